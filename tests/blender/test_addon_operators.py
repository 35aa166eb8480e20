"""Operators as a user meets them: Import Recipe from a YAML or a .blend, the default cube, every problem at
once, Preview's image through undo and the seed it reports, Render Locally on an unsaved file."""
from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
import pytest

from synthfarm.addon import storage
from synthfarm.addon.core.recipe import load_recipe
from synthfarm.addon.ui import panels

from layout_recorder import draw
from scene_state import differences, user_state

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests/data/tiny.yaml"
TOYBOX = ROOT / "assets/recipes/toybox.yaml"


def test_import_recipe_offers_and_reads_a_blend_without_touching_the_open_file(addon, tmp_path):
    bpy.ops.synthfarm.import_recipe(filepath=str(TOYBOX))  # toybox names asset files: paths must follow
    saved = tmp_path / "elsewhere" / "scene with recipe.blend"
    saved.parent.mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(saved))
    bpy.ops.wm.read_factory_settings(use_empty=False)
    scene = bpy.context.scene
    assert "*.blend" in bpy.ops.synthfarm.import_recipe.get_rna_type().properties["filter_glob"].default
    before = user_state()
    assert bpy.ops.synthfarm.import_recipe(filepath=str(saved)) == {"FINISHED"}
    recipe = storage.scene_recipe(scene)  # files checked: the asset paths resolve from the imported folder
    assert recipe.to_data() == load_recipe(TOYBOX).to_data()
    assert storage.scene_base_dir(scene) == TOYBOX.parent
    after = user_state()
    assert not differences(before, after), differences(before, after)  # nothing linked stays, nothing changed
    assert not bpy.data.libraries


def test_import_recipe_from_a_blend_without_one_says_how_to_add_it(addon, tmp_path):
    plain = tmp_path / "plain.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(plain))
    bpy.ops.wm.read_factory_settings(use_empty=False)
    with pytest.raises(RuntimeError, match="no synthfarm recipe in plain.blend.*Import Recipe"):
        bpy.ops.synthfarm.import_recipe(filepath=str(plain))
    assert not bpy.data.libraries


def test_import_into_the_default_scene_names_the_default_cube_and_the_fix(addon, capfd):
    assert bpy.ops.synthfarm.import_recipe(filepath=str(TINY)) == {"FINISHED"}
    out = capfd.readouterr()
    assert "the default cube is still in this scene" in out.out + out.err
    warning = [e for e in draw(panels.VIEW3D_PT_synthfarm_preview).log if e[0] == "operator"
               and e[1] == "synthfarm.hide_unlabelled"]
    assert warning and warning[0][2].values["names"] == "Cube"
    assert bpy.ops.synthfarm.hide_unlabelled(names="Cube") == {"FINISHED"}
    assert addon.objects["Cube"].hide_render
    assert not [e for e in draw(panels.VIEW3D_PT_synthfarm_preview).log if e[0] == "operator"
                and e[1] == "synthfarm.hide_unlabelled"]
    bpy.ops.ed.undo_push(message="import")
    bpy.ops.synthfarm.import_recipe(filepath=str(TINY))
    assert "default cube" not in capfd.readouterr().out  # a hidden cube is no surprise


def test_every_problem_of_the_scene_recipe_is_shown_at_once(addon):
    bpy.ops.synthfarm.import_recipe(filepath=str(TINY))
    settings = addon.synthfarm
    count = next(f for f in settings.generators[1].fields if f.key == "count")
    count.mode = "uniform"  # a whole-number field given a continuous distribution: a field problem
    storage.resize_args(count)
    targets = next(f for f in settings.modifiers[0].fields if f.key == "targets")
    targets.items[0].text = "nothing"  # a name problem, found by the checks between fields
    found = dict(storage.problems(addon))
    assert "use randint" in found["generators[1].count.uniform"]
    assert "no generator named 'nothing'" in found["modifiers[0].targets[0]"]


def _preview_pixels() -> np.ndarray:
    return np.array(bpy.data.images["synthfarm_preview"].pixels[:])


def test_preview_keeps_its_pixels_through_undo_and_runs_again(addon):
    bpy.ops.synthfarm.import_recipe(filepath=str(TINY))
    addon.objects["Cube"].hide_render = True
    bpy.ops.ed.undo_push(message="imported")
    assert bpy.ops.synthfarm.preview() == {"FINISHED"}
    shown = _preview_pixels()
    assert shown.max() > 0.2
    bpy.ops.synthfarm.randomize(seed=1)
    bpy.ops.ed.undo_push(message="Randomize")
    bpy.ops.ed.undo_push(message="more")
    bpy.ops.ed.undo()
    assert np.array_equal(_preview_pixels(), shown)  # a generated image came back blank here
    assert bpy.ops.synthfarm.preview() == {"FINISHED"}
    assert _preview_pixels().shape == shown.shape


def test_preview_reports_the_panels_seed(addon, capfd):
    bpy.ops.synthfarm.import_recipe(filepath=str(TINY))
    addon.synthfarm.seed = 7
    capfd.readouterr()
    assert bpy.ops.synthfarm.preview() == {"FINISHED"}
    out = capfd.readouterr().out
    assert "preview of seed 7:" in out and "synthfarm_preview" in out  # no window here: it says where to look


def test_render_locally_on_an_unsaved_file_asks_for_an_absolute_folder(addon, tmp_path):
    bpy.ops.synthfarm.import_recipe(filepath=str(TINY))
    assert not bpy.data.filepath and addon.synthfarm.out.startswith("//")
    with pytest.raises(RuntimeError, match="not saved yet: save the file, or set Output to an absolute folder"):
        bpy.ops.synthfarm.render_local()
    assert not addon.synthfarm.status
    addon.synthfarm.jobs = 1
    assert bpy.ops.synthfarm.render_local(directory=str(tmp_path / "chosen")) == {"FINISHED"}  # the file browser's
    assert addon.synthfarm.out == str(tmp_path / "chosen") and (tmp_path / "chosen" / "dataset.yaml").is_file()
    assert addon.synthfarm.last_out == str(tmp_path / "chosen")
