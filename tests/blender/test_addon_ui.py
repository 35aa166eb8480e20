"""The add-on in real Blender: the recipe stored on the scene, its operators through bpy.ops, and every
panel's draw with a recording layout."""
from __future__ import annotations

import json
import re
from pathlib import Path

import bpy
import pytest
import yaml

import synthfarm
from synthfarm.addon.core import schema
from synthfarm.addon.core.dataset.native import read_png
from synthfarm.addon.core.recipe import load_recipe, parse_recipe_text
from synthfarm.addon.engine.scene import CLASS_PROP
from synthfarm.addon import storage
from synthfarm.addon.ui import panels

from layout_recorder import draw

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(ROOT.glob("assets/recipes/*.yaml")) + sorted(ROOT.glob("tests/data/*.yaml"))
TINY = ROOT / "tests/data/tiny.yaml"


def _read(path: Path):
    return parse_recipe_text(path.read_text(), path.parent, str(path), check_files=False)


def stored(record) -> object:
    """Everything a record stores (deep), to compare two records."""
    out = {}
    for prop in record.bl_rna.properties:
        key = prop.identifier
        if key == "rna_type":
            continue
        if prop.type == "COLLECTION":
            out[key] = [stored(item) for item in getattr(record, key)]
        elif prop.type == "POINTER":
            out[key] = stored(getattr(record, key))
        elif key in record:
            value = record[key]
            out[key] = value.to_list() if hasattr(value, "to_list") else value
    return out


def object_poses(scene) -> dict:
    return {o.name: [round(x, 5) for row in o.matrix_world for x in row] for o in scene.objects}


# -- storage --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_recipe_props_recipe_is_exact(addon, path):
    recipe = _read(path)
    storage.store_recipe(addon.synthfarm, recipe)
    back = parse_recipe_text(yaml.safe_dump(storage.recipe_data(addon.synthfarm), sort_keys=False), path.parent, check_files=False)
    assert back.to_data() == recipe.to_data()
    assert back.hash() == recipe.hash()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_props_recipe_props_is_exact(addon, path):
    storage.store_recipe(addon.synthfarm, _read(path))
    first = stored(addon.synthfarm)
    again = parse_recipe_text(yaml.safe_dump(storage.recipe_data(addon.synthfarm), sort_keys=False), None, check_files=False)
    storage.store_recipe(addon.synthfarm, again)
    assert stored(addon.synthfarm) == first


def test_every_kind_and_form_is_covered_by_the_examples():
    kinds = {(s, k) for s in schema.SECTIONS for k in schema.KINDS[s]}
    modes, seen = set(schema.MODES), set()
    used, forms = set(), set()
    for path in EXAMPLES:
        data = _read(path).to_data()
        for section in schema.SECTIONS:
            for item in data[section]:
                used.add((section, item["kind"]))
                for value in item.values():
                    for v in value if isinstance(value, list) and len(value) == 2 and section == "randomizers" else [value]:
                        if isinstance(v, dict):
                            forms |= set(v) & modes
                        elif isinstance(v, str) and v.startswith("${"):
                            forms.add("param")
        seen |= {p["type"] for p in data.get("parameters", {}).values()}
    assert kinds <= used, kinds - used
    assert modes - {"constant"} <= forms, modes - forms
    assert seen == {"int", "float", "choice", "bool"}


def test_saved_blend_keeps_the_recipe(addon, tmp_path):
    storage.store_recipe(addon.synthfarm, load_recipe(TINY))
    path = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert not bpy.context.scene.synthfarm.recipe.kind
    bpy.ops.wm.open_mainfile(filepath=str(path))
    assert storage.recipe_data(bpy.context.scene.synthfarm)["generators"] == storage.recipe_data(
        bpy.context.scene.synthfarm)["generators"]
    recipe = storage.scene_recipe(bpy.context.scene, check_files=False)
    assert recipe.to_data() == load_recipe(TINY).to_data()


def test_single_precision_keeps_short_decimals(addon):
    recipe = parse_recipe_text("name: p\ngenerators: [{name: g, kind: primitive, shape: cube, size: 0.1234567,"
                               " color: [0.42, 0.1, 0.7]}]\nsensors: [{name: c, kind: camera}]\n", None)
    storage.store_recipe(addon.synthfarm, recipe)
    assert storage.scene_recipe(addon, check_files=False).generators[0].color.to_data() == [0.42, 0.1, 0.7]


# -- editing operators ------------------------------------------------------------------------------------------
def test_import_export_round_trip_rebases_paths(addon, tmp_path):
    assert bpy.ops.synthfarm.import_recipe(filepath=str(ROOT / "assets/recipes/toybox.yaml")) == {"FINISHED"}
    target = tmp_path / "sub" / "exported.yaml"
    target.parent.mkdir()
    assert bpy.ops.synthfarm.export_recipe(filepath=str(target)) == {"FINISHED"}
    exported = load_recipe(target)  # its paths must name the same files from the new folder
    original = load_recipe(ROOT / "assets/recipes/toybox.yaml")
    assert exported.generators[1].source != original.generators[1].source
    assert (target.parent / exported.generators[1].source.to_data()).resolve() == (
        ROOT / "assets/recipes" / original.generators[1].source.to_data()).resolve()
    assert exported.model_copy(update={"generators": original.generators}).to_data() == original.to_data()


def test_bad_import_is_refused_and_keeps_the_scene(addon, tmp_path):
    bpy.ops.synthfarm.import_recipe(filepath=str(TINY))
    before = stored(addon.synthfarm)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ngenerators: [{name: g, kind: primitive, shape: cube, count: {uniform: [1, 2]}}]\n"
                   "sensors: [{name: c, kind: camera}]\n")
    with pytest.raises(RuntimeError, match=r"generators\[0\]\.count\.uniform: .*use randint"):
        bpy.ops.synthfarm.import_recipe(filepath=str(bad))
    assert stored(addon.synthfarm) == before


def test_validate_names_each_problem(addon):
    bpy.ops.synthfarm.import_recipe(filepath=str(TINY))
    assert bpy.ops.synthfarm.validate() == {"FINISHED"}
    bpy.ops.synthfarm.component_add(section="modifiers", kind="scale_jitter")
    found = dict(storage.problems(addon))
    assert "at least 1 item" in found["modifiers[1].targets"]
    bpy.ops.synthfarm.list_edit(path="synthfarm.modifiers", action="REMOVE", index=1)
    field = next(f for f in addon.synthfarm.randomizers[0].fields if f.key == "radius")
    field.param = "missing"
    rule = addon.synthfarm.constraints.add()
    rule.left, rule.op, rule.right = "radius", "<", "nothing"
    found = dict(storage.problems(addon))
    assert "unknown parameter ${missing}" in found["randomizers[0].radius"]
    assert "no parameter 'nothing'" in found["constraints[0].right"]
    with pytest.raises(RuntimeError, match="2 problem"):
        bpy.ops.synthfarm.validate()


@pytest.mark.parametrize("section", schema.SECTIONS)
def test_add_every_kind_and_edit_the_list(addon, section):
    records = getattr(addon.synthfarm, section)
    start = len(records)
    for kind in schema.KINDS[section]:
        assert bpy.ops.synthfarm.component_add(section=section, kind=kind) == {"FINISHED"}
    assert [r.kind for r in records][start:] == list(schema.KINDS[section])
    active = f"synthfarm.active_{section[:-1]}"
    first = records[0].name
    bpy.ops.synthfarm.list_edit(path=f"synthfarm.{section}", action="DUPLICATE", index=0, active=active)
    assert records[1].name == f"{first}_2" and stored(records[1])["fields"] == stored(records[0])["fields"]
    bpy.ops.synthfarm.list_edit(path=f"synthfarm.{section}", action="DOWN", index=0, active=active)
    assert records[1].name == first and getattr(addon.synthfarm, f"active_{section[:-1]}") == 1
    bpy.ops.synthfarm.list_edit(path=f"synthfarm.{section}", action="UP", index=1, active=active)
    assert records[0].name == first
    bpy.ops.synthfarm.list_edit(path=f"synthfarm.{section}", action="REMOVE", index=1, active=active)
    assert len(records) == start + len(schema.KINDS[section])
    with pytest.raises(RuntimeError, match="no item 99"):
        bpy.ops.synthfarm.list_edit(path=f"synthfarm.{section}", action="REMOVE", index=99)
    with pytest.raises(RuntimeError, match="kind: 'nope'"):
        bpy.ops.synthfarm.component_add(section=section, kind="nope")


def test_distribution_form_change_keeps_a_valid_shape(addon):
    bpy.ops.synthfarm.import_recipe(filepath=str(TINY))
    field = next(f for f in addon.synthfarm.randomizers[0].fields if f.key == "azimuth")
    field.mode = "normal"
    field.use_clip = True
    storage.resize_args(field)
    assert len(field.args) == 4
    field.args[1].f = 5.0
    field.args[2].f, field.args[3].f = -60.0, -20.0
    recipe = storage.scene_recipe(addon, check_files=False)
    assert recipe.randomizers[0].azimuth.to_data() == {"normal": [-60.0, 5.0], "clip": [-60.0, -20.0]}
    field.mode = "choice"  # the arguments become the options; the user edits them from there
    bpy.ops.synthfarm.list_edit(path=field.path_from_id() + ".args", action="ADD", index=0)
    azimuth = storage.scene_recipe(addon, check_files=False).randomizers[0].azimuth.to_data()
    assert azimuth == {"choice": [-60.0, 5.0, -60.0, -20.0, -60.0]}
    field.mode = "uniform"
    assert len(field.args) == 2


def test_class_labels_and_the_unlabelled_warning(addon):
    from synthfarm.addon.ui.operators import unlabelled_visible

    cube = addon.objects["Cube"]
    assert cube in unlabelled_visible(addon)
    bpy.ops.object.select_all(action="DESELECT")
    cube.select_set(True)
    assert bpy.ops.synthfarm.assign_class(label="box") == {"FINISHED"}
    assert cube[CLASS_PROP] == "box" and cube not in unlabelled_visible(addon)
    bpy.ops.synthfarm.assign_class(label="")
    assert CLASS_PROP not in cube
    bpy.ops.synthfarm.select_unlabelled()
    assert cube.select_get()


# -- runs in the user's scene ---------------------------------------------------------------------------------
def _user_scene_recipe(scene):
    """tiny + a scene generator that moves the user's own cube."""
    data = load_recipe(TINY).to_data()
    data["generators"].append({"name": "mine", "kind": "scene", "objects": ["Cube"], "class": "user"})
    data["randomizers"].insert(0, {"kind": "pose_in_volume", "targets": ["mine"], "rotation": "yaw"})
    storage.store_recipe(scene.synthfarm, parse_recipe_text(yaml.safe_dump(data), TINY.parent))
    scene.synthfarm.base_dir = str(TINY.parent)


def test_randomize_is_deterministic_undoable_and_clears(addon):
    _user_scene_recipe(addon)
    user = object_poses(addon)
    world, camera, counts = addon.world.name, addon.camera.name, {k: len(getattr(bpy.data, k)) for k in ("meshes", "materials")}
    bpy.ops.ed.undo_push(message="loaded")
    bpy.ops.ed.undo_push(message="before")
    assert bpy.ops.synthfarm.randomize(seed=7) == {"FINISHED"}
    bpy.ops.ed.undo_push(message="Randomize")
    first = object_poses(addon)
    assert addon.synthfarm.seed == 7 and first["Cube"] != user["Cube"] and len(first) > len(user)
    assert bpy.ops.synthfarm.randomize(seed=7) == {"FINISHED"}
    assert object_poses(addon) == first
    bpy.ops.synthfarm.randomize(seed=8)
    assert object_poses(addon) != first
    bpy.ops.ed.undo_push(message="Randomize 8")
    bpy.ops.ed.undo()  # undo reloads bpy.data: the scene is looked up again
    assert object_poses(bpy.context.scene) == first
    bpy.ops.ed.undo()
    assert object_poses(bpy.context.scene) == user
    bpy.ops.ed.redo()
    assert bpy.ops.synthfarm.clear_sample() == {"FINISHED"}
    scene = bpy.context.scene
    assert object_poses(scene) == user
    assert scene.world.name == world and scene.camera.name == camera
    assert {k: len(getattr(bpy.data, k)) for k in counts} == counts


def test_randomize_survives_save_and_reload(addon, tmp_path):
    _user_scene_recipe(addon)
    user = object_poses(addon)
    bpy.ops.synthfarm.randomize(seed=3)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "sampled.blend"))
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "sampled.blend"))
    assert bpy.ops.synthfarm.clear_sample() == {"FINISHED"}
    assert object_poses(bpy.context.scene) == user
    assert "synthfarm_asset_cache" not in bpy.data.collections


def test_preview_shows_masks_and_boxes_and_restores_settings(addon):
    _user_scene_recipe(addon)
    render = addon.render
    before = (render.engine, render.resolution_x, render.resolution_y, addon.view_settings.view_transform)
    objects = set(addon.objects.keys())
    assert bpy.ops.synthfarm.preview() == {"FINISHED"}
    image = bpy.data.images["synthfarm_preview"]
    assert tuple(image.size) == (32, 24)  # 64x48 at the preview scale 0.5
    pixels = list(image.pixels)
    assert max(pixels) > 0.2
    assert (render.engine, render.resolution_x, render.resolution_y, addon.view_settings.view_transform) == before
    assert set(addon.objects.keys()) == objects


def test_render_locally_writes_a_dataset_and_cancel_leaves_no_partial_job(addon, tmp_path):
    from synthfarm.addon.engine.api import LocalBatch
    from synthfarm.addon.ui.runs import runner, ui_recipe

    _user_scene_recipe(addon)
    addon.synthfarm.out, addon.synthfarm.jobs = str(tmp_path / "ds"), 2
    assert bpy.ops.synthfarm.render_local() == {"FINISHED"}
    lines = [json.loads(x) for x in (tmp_path / "ds" / "jobs.jsonl").read_text().splitlines()]
    assert sorted(x["id"] for x in lines if x["status"] == "done") == [0, 1]
    ann = json.loads(next((tmp_path / "ds" / "annotations").glob("*.json")).read_text())
    assert "user" in {o["class"] for o in ann["objects"]}
    assert read_png(next((tmp_path / "ds" / "images").glob("*.png"))).shape == (48, 64, 3)
    # What the modal operator does on Esc: the current job ends, then interrupted() + finish().
    recipe, base = ui_recipe(addon)
    batch = LocalBatch(recipe, 3, tmp_path / "cut", runner=runner(), base_dir=base)
    assert batch.step()
    batch.interrupted()
    summary = batch.finish()
    assert summary.interrupted and summary.exports is None
    assert len(list((tmp_path / "cut" / "annotations").glob("*.json"))) == 1
    assert not list((tmp_path / "cut").rglob("*.tmp*")) and not (tmp_path / "cut" / ".staging").exists()


# -- panels -----------------------------------------------------------------------------------------------------
PANELS = [getattr(panels, name) for name in dir(panels) if name.startswith("VIEW3D_PT_synthfarm")]


def test_panels_draw_an_empty_scene(addon):
    main = draw(panels.VIEW3D_PT_synthfarm)
    assert "No recipe on this scene yet." in main.labels()
    assert "synthfarm.import_recipe" in main.operators()
    gens = draw(panels.VIEW3D_PT_synthfarm_generators)
    assert ("template_list", "SYNTHFARM_UL_items", "generators") in [e[:3] for e in gens.log]
    assert "synthfarm.component_add" in gens.operators()
    labels = draw(panels.VIEW3D_PT_synthfarm_labels)
    assert any("1 visible without a class: Cube" in text for text in labels.labels())  # the default cube
    for panel in PANELS:
        draw(panel)


def _field_path(path: str) -> str | None:
    """The field record a drawn property belongs to (its arguments and list items included)."""
    match = re.match(r".*?\.fields\[\d+\]", path)
    return match.group(0) if match else None


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_panels_draw_every_field_of_every_component(addon, path):
    storage.store_recipe(addon.synthfarm, _read(path))
    settings = addon.synthfarm
    settings.base_dir = str(path.parent)
    for section in schema.SECTIONS:
        panel = getattr(panels, f"VIEW3D_PT_synthfarm_{section}")
        for i, record in enumerate(getattr(settings, section)):
            setattr(settings, f"active_{section[:-1]}", i)
            layout = draw(panel)
            drawn = {_field_path(e[1].path_from_id()) for e in layout.log if e[0] == "prop"} | {
                _field_path(e[2].values.get("path") or "") for e in layout.log if e[0] == "operator"}
            assert {f.path_from_id() for f in record.fields} <= drawn, (section, record.kind)
            assert "name" in layout.props(record)
    for panel in PANELS:
        draw(panel)
    assert "Valid" in draw(panels.VIEW3D_PT_synthfarm).labels() or path.name == "every_form.yaml"


def test_panels_show_problems_in_place(addon):
    bpy.ops.synthfarm.import_recipe(filepath=str(TINY))
    field = next(f for f in addon.synthfarm.generators[1].fields if f.key == "count")
    field.mode = "uniform"
    storage.resize_args(field)
    layout = draw(panels.VIEW3D_PT_synthfarm_generators) if addon.synthfarm.active_generator == 1 else None
    addon.synthfarm.active_generator = 1
    layout = draw(panels.VIEW3D_PT_synthfarm_generators)
    assert any("use randint" in text for text in layout.labels())
    assert any("1 problem" in text for text in draw(panels.VIEW3D_PT_synthfarm).labels())
    assert any("Fix the recipe" in text for text in draw(panels.VIEW3D_PT_synthfarm_preview).labels())


def test_unregister_leaves_nothing(addon):
    synthfarm.unregister()
    try:
        assert not hasattr(bpy.types.Scene, "synthfarm")
        for cls in (*panels.classes, *storage.classes):
            assert not getattr(cls, "is_registered", False), cls
        assert not hasattr(bpy.types, "SYNTHFARM_OT_randomize")
        assert not any("synthfarm" in getattr(h, "__module__", "") for hs in
                       (bpy.app.handlers.save_pre, bpy.app.handlers.load_post) for h in hs)
    finally:
        synthfarm.register()
