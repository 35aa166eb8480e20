"""A saved .blend read as a job input in this process (real bpy): the recipe stored on its scene, its
paths rebased to the .blend's folder, the file itself as scene.base, and the errors a user can act on."""
from __future__ import annotations

import logging
from pathlib import Path

import bpy
import pytest
import yaml

from synthfarm.addon.core.recipe import RecipeError, load_recipe, parse_recipe_text
from synthfarm.addon.engine.api import load_source
from synthfarm.addon.engine.blend_recipe import recipe_text_from_blend
from synthfarm.addon.engine.scene import CLASS_PROP
from synthfarm.addon import storage

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests/data/tiny.yaml"
TOYBOX = ROOT / "assets/recipes/toybox.yaml"


@pytest.fixture(autouse=True)
def scene_storage():
    """The scene storage registered as a worker would (no add-on); taken away again if it was not there."""
    was = hasattr(bpy.types.Scene, "synthfarm")
    bpy.ops.wm.read_factory_settings(use_empty=False)
    storage.ensure_registered()
    yield
    bpy.ops.wm.read_factory_settings(use_empty=True)
    if not was and hasattr(bpy.types.Scene, "synthfarm"):
        storage.unregister()


def save_blend(path: Path, recipes: dict[str, Path | None], active: str = "Scene", base_dir: str = "") -> Path:
    """A .blend with the scenes named in ``recipes`` (each with that recipe stored, or none) and a labelled
    cube of the user's own in the first one."""
    for name in recipes:
        if name not in bpy.data.scenes:
            bpy.data.scenes.new(name)
    for name, recipe in recipes.items():
        if recipe is not None:
            storage.store_recipe(bpy.data.scenes[name].synthfarm, load_recipe(recipe))
            bpy.data.scenes[name].synthfarm.base_dir = base_dir
    cube = bpy.data.objects["Cube"]
    cube[CLASS_PROP] = "user_box"
    bpy.context.window.scene = bpy.data.scenes[active]
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    return path


def without_scene(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "scene"}


def test_the_recipe_is_the_stored_one_with_the_blend_as_base(tmp_path):
    blend = save_blend(tmp_path / "user scene.blend", {"Scene": TINY})
    text, base_dir = recipe_text_from_blend(blend)
    assert base_dir == tmp_path.resolve()
    recipe = parse_recipe_text(text, base_dir, str(blend))
    assert recipe.scene.base == "user scene.blend"
    assert without_scene(recipe.to_data()) == without_scene(load_recipe(TINY).to_data())
    assert bpy.context.scene.objects["Cube"][CLASS_PROP] == "user_box"  # the file is what is open now
    model, loaded_dir, loaded_text = load_source(blend)  # the one loader the CLI, API and farm use
    assert (model.to_data(), loaded_dir, loaded_text) == (recipe.to_data(), base_dir, text)


def test_paths_are_rebased_to_the_blends_folder(tmp_path):
    """A recipe whose files sit beside another folder (the scene's Recipe folder) keeps naming the same
    files once its paths start at the .blend's folder: the .blend and those files make one bundle."""
    blend = save_blend(tmp_path / "toys.blend", {"Scene": TOYBOX}, base_dir=str(TOYBOX.parent))
    text, base_dir = recipe_text_from_blend(blend)
    recipe = parse_recipe_text(text, base_dir, str(blend))  # checks that every named file exists
    original = load_recipe(TOYBOX)
    sources = {g.name: (base_dir / g.source.to_data()).resolve() for g in recipe.generators if getattr(g, "source", None)}
    assert sources and sources == {g.name: (TOYBOX.parent / g.source.to_data()).resolve()
                                   for g in original.generators if getattr(g, "source", None)}


# FILE_PATH properties lack Blender 5's PATH_SUPPORTS_BLEND_RELATIVE option; the value is kept anyway
@pytest.mark.filterwarnings("error:.*does not support blend relative:RuntimeWarning")  # // paths are allowed
def test_blender_relative_paths_become_recipe_paths(tmp_path):
    (tmp_path / "assets").mkdir()
    obj = tmp_path / "assets" / "thing.obj"
    obj.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    recipe = tmp_path / "r.yaml"
    data = yaml.safe_load(TINY.read_text())
    data["generators"].append({"name": "thing", "kind": "asset", "source": "assets/thing.obj", "class": "thing"})
    recipe.write_text(yaml.safe_dump(data))
    blend = tmp_path / "sub" / "scene.blend"
    blend.parent.mkdir()
    save_blend(blend, {"Scene": recipe})
    thing = next(g for g in bpy.context.scene.synthfarm.generators if g.name == "thing")
    next(f for f in thing.fields if f.key == "source").args[0].path = "//../assets/thing.obj"  # Blender's file browser
    bpy.ops.wm.save_mainfile()
    text, base_dir = recipe_text_from_blend(blend)
    source = next(g for g in yaml.safe_load(text)["generators"] if g["name"] == "thing")["source"]
    assert source == "../assets/thing.obj" and (base_dir / source).resolve() == obj.resolve()


def test_a_stored_scene_base_gives_way_to_the_blend(tmp_path, caplog):
    other = tmp_path / "other.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(other), copy=True)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({**yaml.safe_load(TINY.read_text()), "scene": {"base": "other.blend"}}))
    blend = save_blend(tmp_path / "mine.blend", {"Scene": recipe})
    with caplog.at_level(logging.WARNING):
        text, _ = recipe_text_from_blend(blend)
    assert yaml.safe_load(text)["scene"] == {"base": "mine.blend"}
    assert "'other.blend'" in caplog.text and "the .blend itself" in caplog.text


def test_the_one_scene_with_a_recipe_is_used_when_the_active_one_has_none(tmp_path):
    blend = save_blend(tmp_path / "two.blend", {"Scene": None, "Synth": TINY}, active="Scene")
    text, _ = recipe_text_from_blend(blend)
    assert yaml.safe_load(text)["name"] == "tiny"


def test_several_candidate_scenes_are_named(tmp_path):
    blend = save_blend(tmp_path / "three.blend", {"Scene": None, "A": TINY, "B": TINY}, active="Scene")
    with pytest.raises(RecipeError) as err:
        recipe_text_from_blend(blend)
    assert "'A', 'B'" in str(err.value) and "active scene" in str(err.value)


def test_a_blend_without_a_recipe_says_how_to_add_one(tmp_path):
    blend = save_blend(tmp_path / "plain.blend", {"Scene": None})
    with pytest.raises(RecipeError) as err:
        recipe_text_from_blend(blend)
    message = str(err.value)
    assert "no synthfarm recipe in plain.blend" in message and "'Scene'" in message
    assert "Synthfarm tab" in message and "Import Recipe" in message


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        recipe_text_from_blend(tmp_path / "nowhere.blend")
    junk = tmp_path / "junk.blend"
    junk.write_text("not a blend")
    with pytest.raises(RecipeError, match="cannot open junk.blend as a .blend"):
        recipe_text_from_blend(junk)


def test_scripts_inside_the_blend_do_not_run(tmp_path):
    marker = tmp_path / "ran"
    text = bpy.data.texts.new("evil.py")
    text.write(f"open({str(marker)!r}, 'w').write('x')\n")
    text.use_module = True  # registered text blocks run on load when scripts are allowed
    blend = save_blend(tmp_path / "scripted.blend", {"Scene": TINY})
    recipe_text_from_blend(blend)
    assert not marker.exists()
    bpy.ops.wm.open_mainfile(filepath=str(blend), load_ui=False, use_scripts=True)  # the control
    assert marker.exists()


def test_session_bundles_the_blend_and_every_file_its_recipe_names(tmp_path):
    from synthfarm.farm.session import Session
    from synthfarm.farm.transfer import make_bundle

    blend = save_blend(tmp_path / "toys.blend", {"Scene": TOYBOX}, base_dir=str(TOYBOX.parent))
    session = Session("tcp://127.0.0.1:9", blend)  # nothing is sent before submit
    assert session.recipe.scene.base == "toys.blend" and session.recipe_dir == tmp_path.resolve()
    root, recipe_path, manifest = make_bundle(session.recipe, session.recipe_path)
    files = {(root / rel).resolve() for rel in manifest}
    assert (root / recipe_path).resolve() == blend.resolve() and blend.resolve() in files
    assert (ROOT / "assets/toybox/bin.obj").resolve() in files
    assert {p.resolve() for p in (ROOT / "assets/toys").iterdir() if p.is_file()} <= files
