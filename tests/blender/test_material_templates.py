"""Procedural and texture-set materials made as copies of one made before (engine/shader_graph.py) are the same
materials as those built node by node: every node, setting, socket value, link and colour-ramp stop."""
import bpy
import numpy as np
import pytest
from PIL import Image

from synthfarm.addon.engine.materials import texture_material
from synthfarm.addon.engine.procedural import FAMILIES, build_material
from synthfarm.addon.engine.shader_graph import MaterialTemplates

SKIP = {"rna_type", "select", "show_options", "show_preview", "show_texture", "hide", "mute", "is_active_output"}


def _value(value):
    if isinstance(value, bpy.types.ID):
        return ("ID", value.name)
    if isinstance(value, str):
        return value
    try:
        return tuple(value)
    except TypeError:
        return value


def describe(material) -> dict:
    """Everything a render reads of a material's node tree, as plain data."""
    nodes = {}
    for node in material.node_tree.nodes:
        settings = {p.identifier: _value(getattr(node, p.identifier)) for p in node.bl_rna.properties
                    if p.identifier not in SKIP and p.type in {"BOOLEAN", "INT", "FLOAT", "STRING", "ENUM", "POINTER"}
                    and p.identifier not in {"parent", "color_ramp", "texture_mapping", "color_mapping",
                                             "image_user", "interface", "node_tree"}}
        inputs = [(s.identifier, s.enabled, _value(s.default_value)) for s in node.inputs if hasattr(s, "default_value")]
        ramp = None
        if getattr(node, "color_ramp", None) is not None:
            ramp = (node.color_ramp.interpolation, node.color_ramp.color_mode,
                    [(e.position, tuple(e.color)) for e in node.color_ramp.elements])
        nodes[node.name] = (node.bl_idname, settings, inputs, ramp)
    links = sorted((l.from_node.name, l.from_socket.identifier, l.to_node.name, l.to_socket.identifier)
                   for l in material.node_tree.links)
    return {"nodes": nodes, "links": links, "diffuse": tuple(material.diffuse_color)}


@pytest.fixture
def empty():
    bpy.ops.wm.read_factory_settings(use_empty=True)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_procedural_material_copied_from_a_template_is_the_one_built_node_by_node(empty, family):
    templates = MaterialTemplates()
    build_material("first", family, np.random.default_rng(0), templates=templates)  # the template: seed 0's values
    for seed in range(1, 6):
        kwargs = dict(object_scale=(1.0, 2.0, 0.5), scale=1.0 + seed / 3, bump=0.1 * seed)
        copied, record = build_material("m", family, np.random.default_rng(seed), templates=templates, **kwargs)
        built, same_record = build_material("m", family, np.random.default_rng(seed), **kwargs)
        assert record == same_record
        assert describe(copied) == describe(built), (family, seed)
        assert copied.name.split(".")[0] == built.name.split(".")[0] == "m"
    patterns = 5 if family == "random" else 1  # one template per structure, not per material
    assert 1 <= len(templates.materials()) <= patterns and all(t.users == 0 for t in templates.materials())


def test_a_texture_set_material_copied_from_a_template_is_the_one_built_node_by_node(empty, tmp_path):
    maps = {}
    for kind, channels in (("color", 3), ("roughness", 1), ("normal_dx", 3), ("displacement", 1), ("ao", 1)):
        pixels = (np.arange(16 * 16 * channels) % 251).astype(np.uint8).reshape(16, 16, channels).squeeze()
        Image.fromarray(pixels).save(tmp_path / f"{kind}.png")
        maps[kind] = tmp_path / f"{kind}.png"
    templates = MaterialTemplates()
    texture_material("first", maps, scale=0.5, rotation_deg=10, templates=templates)
    for scale, rotation in ((1.0, 0.0), (2.5, 45.0)):
        copied = texture_material("t", maps, object_scale=(2.0, 1.0, 1.0), scale=scale, rotation_deg=rotation,
                                  templates=templates)
        built = texture_material("t", maps, object_scale=(2.0, 1.0, 1.0), scale=scale, rotation_deg=rotation)
        assert describe(copied) == describe(built)
    assert len(templates.materials()) == 1


def test_templates_freed_by_blender_are_made_again(empty):
    templates = MaterialTemplates()
    build_material("a", "plastic", np.random.default_rng(0), templates=templates)
    bpy.data.batch_remove(templates.materials())  # e.g. File > New, or an add-on run's clean-up of unused data
    copied, _ = build_material("b", "plastic", np.random.default_rng(1), templates=templates)
    built, _ = build_material("b", "plastic", np.random.default_rng(1))
    assert describe(copied) == describe(built) and len(templates.materials()) == 1
