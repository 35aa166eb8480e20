"""Small material helpers shared by generators and modifiers."""
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
