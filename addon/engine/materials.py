"""Material helpers: base colours, own copies, texture-set materials, the colour stage and jitter."""
from __future__ import annotations

import bpy


def principled(material):
    """The Principled BSDF node of a material, or None."""
    if material is None or material.node_tree is None:
        return None
    return next((n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED"), None)


def new_material(name: str, rgb) -> bpy.types.Material:
    material = bpy.data.materials.new(name)
    set_base_color(material, rgb)
    return material


def base_color(material) -> tuple[float, float, float]:
    node = principled(material)
    if node is not None:
        return tuple(node.inputs["Base Color"].default_value[:3])
    return tuple(material.diffuse_color[:3]) if material else (0.8, 0.8, 0.8)


def set_base_color(material, rgb) -> None:
    node = principled(material)
    if node is not None:
        node.inputs["Base Color"].default_value = (*rgb, 1.0)
    material.diffuse_color = (*rgb, 1.0)


def own_materials(obj) -> list:
    """Give ``obj`` its own copies of its materials (object-linked slots), so that changing them does
    not touch other instances sharing the mesh. Returns the copies."""
    copies = []
    for slot in obj.material_slots:
        source = slot.material
        slot.link = "OBJECT"
        slot.material = source.copy() if source is not None else new_material(f"{obj.name}_mat", (0.8, 0.8, 0.8))
        copies.append(slot.material)
    return copies


# -- texture sets ---------------------------------------------------------------------------------------
def texture_material(name: str, maps: dict, *, object_scale=(1.0, 1.0, 1.0), scale: float = 1.0,
                     rotation_deg: float = 0.0, templates=None) -> bpy.types.Material:
    """A PBR material from a texture set's maps ({map: path}, see core/textures.py), box-projected on
    object coordinates in metres (no UVs needed), ``scale`` metres per tile, rotated about the mapping axes.
    ``templates``: made as a copy of one made before (see shader_graph)."""
    import math

    from .shader_graph import Graph

    g = Graph(name, templates)
    coords = g.node("ShaderNodeTexCoord")
    mapping = g.node("ShaderNodeMapping", {"Vector": coords.outputs["Object"]})
    mapping.inputs["Scale"].default_value = [s / scale for s in object_scale]
    mapping.inputs["Rotation"].default_value = [math.radians(rotation_deg)] * 3

    def image(kind: str, colour: bool):
        picture = bpy.data.images.load(str(maps[kind]), check_existing=True)
        picture.colorspace_settings.is_data = not colour
        return g.node("ShaderNodeTexImage", {"Vector": mapping.outputs["Vector"]}, projection="BOX",
                      projection_blend=0.2, image=picture)

    color = image("color", True).outputs["Color"]
    if "ao" in maps:
        ao = image("ao", False).outputs["Color"]
        color = g.node("ShaderNodeMix", {0: 1.0, 6: color, 7: ao}, data_type="RGBA", blend_type="MULTIPLY").outputs[2]
    g.out(Base_Color=color)
    if "arm" in maps:
        split = g.node("ShaderNodeSeparateColor", {"Color": image("arm", False).outputs["Color"]})
        g.out(Roughness=split.outputs["Green"], Metallic=split.outputs["Blue"])
    if "roughness" in maps:
        g.out(Roughness=image("roughness", False).outputs["Color"])
    if "metalness" in maps:
        g.out(Metallic=image("metalness", False).outputs["Color"])
    normal = maps.get("normal_gl") or maps.get("normal_dx")
    if normal is not None:
        pixels = image("normal_gl" if "normal_gl" in maps else "normal_dx", False).outputs["Color"]
        if "normal_gl" not in maps:  # DirectX: green points down; flip it for Blender (OpenGL)
            split = g.node("ShaderNodeSeparateColor", {"Color": pixels})
            flip = g.node("ShaderNodeMath", {0: 1.0, 1: split.outputs["Green"]}, operation="SUBTRACT")
            pixels = g.node("ShaderNodeCombineColor", {"Red": split.outputs["Red"], "Green": flip.outputs[0],
                                                       "Blue": split.outputs["Blue"]}).outputs["Color"]
        normal_map = g.node("ShaderNodeNormalMap", {"Color": pixels, "Strength": 1.0})
        if "displacement" in maps:
            bump = g.node("ShaderNodeBump", {"Height": image("displacement", False).outputs["Color"],
                                             "Strength": 0.3, "Distance": 0.01 * scale,
                                             "Normal": normal_map.outputs["Normal"]})
            g.out(Normal=bump.outputs["Normal"])
        else:
            g.out(Normal=normal_map.outputs["Normal"])
    elif "displacement" in maps:
        g.bump(image("displacement", False).outputs["Color"], 0.3, 0.01 * scale)
    return g.material


# -- colour stage and jitter ------------------------------------------------------------------------------
def colour_stage(material):
    """The hue/saturation/value node in front of the base colour (made once per material): whatever fed the
    base colour (an image, a pattern, a plain value) now passes through it."""
    node = principled(material)
    if node is None:
        return None
    socket = node.inputs["Base Color"]
    tree = material.node_tree
    if socket.is_linked and socket.links[0].from_node.type == "HUE_SAT":
        return socket.links[0].from_node
    stage = tree.nodes.new("ShaderNodeHueSaturation")
    if socket.is_linked:
        tree.links.new(socket.links[0].from_socket, stage.inputs["Color"])
    else:
        stage.inputs["Color"].default_value = socket.default_value
    tree.links.new(stage.outputs["Color"], socket)
    return stage


def scale_input(material, name: str, factor: float) -> None:
    """Multiply a Principled input (Roughness, Metallic) by ``factor``, linked or not, kept within [0, 1]."""
    node = principled(material)
    if node is None:
        return
    socket = node.inputs[name]
    if not socket.is_linked:
        socket.default_value = min(1.0, max(0.0, socket.default_value * factor))
        return
    tree = material.node_tree
    math_node = tree.nodes.new("ShaderNodeMath")
    math_node.operation, math_node.use_clamp = "MULTIPLY", True
    tree.links.new(socket.links[0].from_socket, math_node.inputs[0])
    math_node.inputs[1].default_value = factor
    tree.links.new(math_node.outputs[0], socket)


def scale_normal_strength(material, factor: float) -> int:
    """Multiply the strength of every normal-map and bump node of a material; returns how many there were."""
    if material is None or material.node_tree is None:
        return 0
    count = 0
    for node in material.node_tree.nodes:
        if node.type in ("NORMAL_MAP", "BUMP"):
            node.inputs["Strength"].default_value *= factor
            count += 1
    return count
