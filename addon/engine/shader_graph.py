"""Materials described as a node graph, then made in Blender in one go, most often by copying one made before.

Building a node tree through bpy is slow: every node added and every value written updates the tree (2-6 ms per
material of the procedural families, tens of ms per job). A :class:`Graph` therefore only records what a material
is: its nodes (kind and settings), links and colour ramps (its *structure*), and the values written to sockets.
When the material is needed, :class:`MaterialTemplates` copies a material of the same structure made earlier
(~0.1 ms) and writes only the values that differ from that one's; the first of a structure is built node by node.
A copy is the same material as one built from scratch: same nodes, names, links and values.
"""
from __future__ import annotations

import bpy

from .materials import principled
from .scene import alive

BSDF = -1  # the node index of the material's own Principled BSDF


class Socket:
    """An input or output of a node of a :class:`Graph` (made in Blender when the graph is)."""

    def __init__(self, graph: "Graph", node: int, side: str, key):
        self._graph, self.node, self.side, self.key = graph, node, side, key

    @property
    def default_value(self):
        raise AttributeError("a graph's sockets are written, not read")

    @default_value.setter
    def default_value(self, value) -> None:
        self._graph.set(self, value)


class _Sockets:
    def __init__(self, graph: "Graph", node: int, side: str):
        self._graph, self._node, self._side = graph, node, side

    def __getitem__(self, key) -> Socket:
        return Socket(self._graph, self._node, self._side, key)


class Node:
    """A node of a :class:`Graph`: its ``inputs`` and ``outputs`` by name or index, as in bpy."""

    def __init__(self, graph: "Graph", index: int):
        self.index = index
        self.inputs, self.outputs = _Sockets(graph, index, "in"), _Sockets(graph, index, "out")


def _frozen(value):
    return tuple(_frozen(v) for v in value) if isinstance(value, (list, tuple)) else value


class Graph:
    """A material's node tree with a Principled BSDF, and a terse way to add linked nodes. ``material`` makes it
    (through ``templates`` when given: a :class:`MaterialTemplates` kept for the process)."""

    def __init__(self, name: str, templates: "MaterialTemplates | None" = None):
        self.name, self.templates = name, templates
        self.structure: list[tuple] = []  # ("node", kind, settings) | ("link", from, to) | ("ramp", node, how, where)
        self.values: dict[tuple, object] = {}  # (node, socket key) or (node, setting) -> the last value written
        self.bsdf = Node(self, BSDF)
        self._nodes = 0
        self._material = None

    @property
    def material(self) -> bpy.types.Material:
        if self._material is None:
            self._material = self.templates.make(self) if self.templates is not None else self.build(self.name)[0]
        return self._material

    def node(self, kind: str, inputs: dict | None = None, **settings) -> Node:
        index, self._nodes = self._nodes, self._nodes + 1
        ids = {key: value for key, value in settings.items() if isinstance(value, bpy.types.ID)}  # e.g. an image
        self.structure.append(("node", kind, tuple((k, _frozen(v)) for k, v in settings.items() if k not in ids)))
        self.values.update({(index, ("setting", key)): value for key, value in ids.items()})
        node = Node(self, index)
        for key, value in (inputs or {}).items():
            self.set(node.inputs[key], value)
        return node

    def set(self, socket: Socket, value) -> None:
        if isinstance(value, Socket):
            self.structure.append(("link", (value.node, value.key), (socket.node, socket.key)))
        else:
            self.values[(socket.node, socket.key)] = value

    def out(self, **inputs) -> None:
        """Set inputs of the Principled BSDF (names with spaces are written with underscores)."""
        for key, value in inputs.items():
            self.set(self.bsdf.inputs[key.replace("_", " ")], value)

    def coords(self, scale, stretch=(1.0, 1.0, 1.0)) -> Socket:
        """Object coordinates in metres, times ``stretch`` per axis, divided by ``scale``."""
        coords = self.node("ShaderNodeTexCoord")
        mapping = self.node("ShaderNodeMapping", {"Vector": coords.outputs["Object"]})
        mapping.inputs["Scale"].default_value = [s / scale for s in stretch]
        self.mapping = mapping
        return mapping.outputs["Vector"]

    def ramp(self, factor: Socket, colors, positions=None, interpolation="LINEAR") -> Socket:
        node = self.node("ShaderNodeValToRGB", {"Fac": factor})
        positions = positions or [i / max(1, len(colors) - 1) for i in range(len(colors))]
        self.structure.append(("ramp", node.index, interpolation, _frozen(positions)))
        for i, color in enumerate(colors):
            self.values[(node.index, ("element", i))] = (*color, 1.0)
        return node.outputs["Color"]

    def mix(self, factor, a, b, kind="RGBA") -> Socket:
        node = self.node("ShaderNodeMix", data_type=kind)
        a_in, b_in, out = {"RGBA": (6, 7, 2), "FLOAT": (2, 3, 0)}[kind]  # the Mix node's sockets per data type
        self.set(node.inputs[0], factor)
        self.set(node.inputs[a_in], a)
        self.set(node.inputs[b_in], b)
        return node.outputs[out]

    def bump(self, height: Socket, strength: float, distance: float = 0.002) -> None:
        node = self.node("ShaderNodeBump", {"Height": height, "Strength": strength, "Distance": distance})
        self.out(Normal=node.outputs["Normal"])

    # -- making it in Blender ------------------------------------------------------------------------------------
    def build(self, name: str) -> tuple[bpy.types.Material, list[str]]:
        """A new material made node by node: the structure in the order it was described, then every value.
        Returns it and its nodes' names by index (a copy of it has the same names)."""
        material = bpy.data.materials.new(name)
        tree = material.node_tree
        nodes = {BSDF: principled(material)}
        for op in self.structure:
            if op[0] == "node":
                node = nodes[len(nodes) - 1] = tree.nodes.new(op[1])
                for key, value in op[2]:
                    setattr(node, key, value)
            elif op[0] == "link":
                (out_node, out_key), (in_node, in_key) = op[1], op[2]
                tree.links.new(nodes[out_node].outputs[out_key], nodes[in_node].inputs[in_key])
            else:
                ramp = nodes[op[1]].color_ramp
                ramp.interpolation = op[2]
                while len(ramp.elements) < len(op[3]):
                    ramp.elements.new(0.5)
                for element, position in zip(ramp.elements, op[3]):
                    element.position = position
        names = [nodes[i].name for i in range(len(nodes) - 1)]
        self.write(material, self.values, names)
        return material, names

    @staticmethod
    def write(material, values: dict, names: list[str]) -> None:
        """Write ``values`` (as in :attr:`values`) into a material of this structure whose nodes are ``names``."""
        nodes, bsdf = material.node_tree.nodes, principled(material)
        for (index, key), value in values.items():
            node = bsdf if index == BSDF else nodes[names[index]]
            if isinstance(key, tuple) and key[0] == "setting":
                setattr(node, key[1], value)
            elif isinstance(key, tuple) and key[0] == "element":
                node.color_ramp.elements[key[1]].color = value
            else:
                socket = node.inputs[key]
                socket.default_value = (*value, 1.0) if isinstance(value, (tuple, list)) and len(value) == 3 \
                    and socket.type == "RGBA" else value

    def key(self) -> tuple:
        """What a material's copy shares with it: the structure, and which values are written (one left unwritten
        keeps Blender's default)."""
        return tuple(self.structure), tuple(self.values)


def _same(a, b) -> bool:
    try:
        return bool(a == b) and not isinstance(a, bpy.types.ID)  # a datablock (an image) is always written again
    except (ValueError, TypeError, ReferenceError):
        return False


class MaterialTemplates:
    """One material per graph structure, kept for the process (not used by any object: it never renders); a
    graph's material is a copy of it with the values that differ written. Kept by :class:`~.assets.AssetCache`
    (its datablocks survive a job), forgotten when Blender frees them."""

    KEEP = 64

    def __init__(self):
        self._made: dict[tuple, tuple[bpy.types.Material, list[str], dict]] = {}

    def make(self, graph: Graph) -> bpy.types.Material:
        key = graph.key()
        made = self._made.get(key)
        if made is None or not alive(made[0], bpy.data.materials):
            if len(self._made) >= self.KEEP:
                self._forget(next(iter(self._made)))
            made = self._made[key] = (*graph.build("synthfarm_template"), dict(graph.values))
        template, names, written = made
        if not graph.values:
            return graph.build(graph.name)[0]
        material = template.copy()
        material.name = graph.name
        # at least one value written: a write updates the tree (a bare copy keeps stale flags of which sockets a
        # node shows, e.g. the Principled BSDF's Subsurface IOR)
        changed = {k: v for k, v in graph.values.items() if not _same(written[k], v)}
        graph.write(material, changed or dict([next(iter(graph.values.items()))]), names)
        return material

    def _forget(self, key) -> None:
        template, *_ = self._made.pop(key)
        if alive(template, bpy.data.materials) and template.users == 0:
            bpy.data.materials.remove(template)

    def materials(self) -> list:
        return [template for template, *_ in self._made.values()]

    def clear(self) -> None:
        self._made.clear()
