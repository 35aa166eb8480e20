"""No add-on operation changes anything of the user's that it did not create.

A user's scene (objects with every rotation form, deltas and a parent, a camera, two lights, a world with
its nodes, render and colour settings, the frame, the selection and the active object, Cycles' device
preferences) goes through Randomize, Clear Sample, Preview (twice, with a sample, after undo), Render
Locally (finished and cancelled) and Submit (succeeded and failed); afterwards every transform is compared
exactly and every setting by value (tests/support/scene_state.py)."""
from __future__ import annotations

import re
from pathlib import Path

import bpy
import pytest
import yaml

import synthfarm
from synthfarm.addon import storage
from synthfarm.addon.core.recipe import load_recipe, parse_recipe_text

from scene_state import differences, user_state

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests/data/tiny.yaml"
PREVIEW = ("synthfarm_preview",)  # the image Preview makes (its own)


def build_user_scene():
    """The default scene, then a user's work on it."""
    bpy.ops.wm.read_factory_settings(use_empty=False)
    scene = bpy.context.scene
    bpy.ops.mesh.primitive_monkey_add(location=(0.9, 0.9, 0.3), rotation=(0.1, 0.2, 0.3), scale=(1.1, 0.9, 1.0))
    monkey = bpy.context.object
    monkey.data.materials.append(bpy.data.materials.new("Monkey paint"))
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.2, location=(-0.7, 0.4, 0.5))
    ball = bpy.context.object
    ball.rotation_mode = "QUATERNION"
    ball.rotation_quaternion = (0.9, 0.1, 0.3, 0.2)
    ball.delta_location, ball.delta_rotation_euler, ball.delta_scale = (0.01, 0.02, 0.03), (0.0, 0.2, 0.0), (1, 2, 1)
    ball.parent = monkey
    ball.matrix_parent_inverse = monkey.matrix_world.inverted()
    ball["note"] = "mine"
    bpy.ops.object.empty_add(location=(0.3, -0.2, 1.0))
    bpy.context.object.rotation_mode, bpy.context.object.rotation_axis_angle = "AXIS_ANGLE", (0.7, 0.2, 0.3, 0.9)
    camera = scene.objects["Camera"]
    camera.location, camera.rotation_euler = (3.1, -2.9, 1.7), (1.2, 0.01, 0.8)
    camera.data.lens, camera.data.clip_start, camera.data.clip_end = 35.0, 0.2, 150.0
    light = scene.objects["Light"]
    light.data.energy, light.data.color = 750.0, (1.0, 0.9, 0.8)
    bpy.ops.object.light_add(type="AREA", location=(-2.0, 1.0, 3.0), rotation=(0.5, -0.3, 0.2))
    bpy.context.object.data.energy, bpy.context.object.data.size = 123.5, 0.75
    world = bpy.data.worlds.new("User World")
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.1, 0.2, 0.3, 1.0)
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.7
    scene.world = world
    render = scene.render
    render.engine = "BLENDER_WORKBENCH"
    render.resolution_x, render.resolution_y, render.resolution_percentage = 1280, 720, 50
    render.film_transparent, render.use_compositing = True, True
    render.image_settings.file_format, render.image_settings.quality = "JPEG", 80
    scene.cycles.samples, scene.cycles.use_denoising, scene.cycles.filter_width = 77, True, 2.5
    scene.view_settings.view_transform, scene.view_settings.look = "AgX", "AgX - Punchy"
    scene.view_layers[0].use_pass_z = False
    scene.frame_current = 17
    bpy.context.preferences.addons["cycles"].preferences.compute_device_type = "CUDA"
    for obj in scene.objects:
        obj.select_set(obj.name in ("Suzanne", "Light"))
    bpy.context.view_layer.objects.active = camera
    for obj in scene.objects:  # world matrices as Blender computes them from the channels (as after loading)
        obj.update_tag()
    bpy.context.view_layer.update()
    return scene


def store_recipe(scene) -> None:
    """tiny + a scene generator that moves the user's own Suzanne (and its child)."""
    data = load_recipe(TINY).to_data()
    data["generators"].append({"name": "mine", "kind": "scene", "objects": ["Suzanne"], "class": "user"})
    data["randomizers"].insert(0, {"kind": "pose_in_volume", "targets": ["mine"], "rotation": "uniform"})
    storage.store_recipe(scene.synthfarm, parse_recipe_text(yaml.safe_dump(data), TINY.parent))
    scene.synthfarm.base_dir = str(TINY.parent)


@pytest.fixture
def scene():
    build_user_scene()
    synthfarm.register()
    scene = bpy.context.scene
    store_recipe(scene)
    yield scene
    bpy.context.preferences.addons["cycles"].preferences.compute_device_type = "NONE"
    synthfarm.unregister()


def same(before, after=None):
    after = after if after is not None else user_state(ignore_images=PREVIEW)
    found = differences(before, after)
    assert not found, "\n".join(found[:40])


def renumbered(state: dict) -> dict:
    """A state with the add-on's own datablocks (a sample's) named without Blender's .001 suffixes: a sample made
    again is the same sample, though Blender numbers its new datablocks on."""
    names = {kind: sorted(re.sub(r"\.\d{3}$", "", n) if n.startswith("synthfarm_") else n for n in found)
             for kind, found in state["datablocks"].items()}
    return {**state, "datablocks": names}


def test_randomize_then_clear_sample_gives_everything_back(scene):
    before = user_state()
    assert bpy.ops.synthfarm.randomize(seed=5) == {"FINISHED"}
    sampled = user_state()
    assert sampled["objects"]["Suzanne"]["object"]["location"] != before["objects"]["Suzanne"]["object"]["location"]
    assert bpy.ops.synthfarm.randomize(seed=5) == {"FINISHED"}  # again: the same sample, nothing else
    same(renumbered(sampled), renumbered(user_state()))
    assert bpy.ops.synthfarm.clear_sample() == {"FINISHED"}
    same(before, user_state())


def test_preview_twice_with_a_sample_and_after_undo(scene):
    before = user_state()
    assert bpy.ops.synthfarm.preview() == {"FINISHED"}
    same(before)
    assert bpy.ops.synthfarm.preview() == {"FINISHED"}
    same(before)
    bpy.ops.ed.undo_push(message="previewed")
    bpy.ops.synthfarm.randomize(seed=2)
    bpy.ops.ed.undo_push(message="Randomize")
    sampled = user_state(ignore_images=PREVIEW)
    assert bpy.ops.synthfarm.preview() == {"FINISHED"}  # the sample is taken out for the render and put back
    same(renumbered(sampled), renumbered(user_state(ignore_images=PREVIEW)))
    bpy.ops.ed.undo()  # undo reloads bpy.data: everything is looked up again
    after_undo = user_state(ignore_images=PREVIEW)
    same(before, after_undo)
    assert bpy.ops.synthfarm.preview() == {"FINISHED"}
    same(after_undo)


def test_render_locally_finished_and_cancelled(scene, tmp_path):
    from synthfarm.addon.ui.runs import LocalRender

    before = user_state()
    scene.synthfarm.out, scene.synthfarm.jobs = str(tmp_path / "done"), 2
    assert bpy.ops.synthfarm.render_local() == {"FINISHED"}
    same(before)
    scene.synthfarm.out = str(tmp_path / "cut")
    run = LocalRender(bpy.context)  # what the modal operator runs: a job per timer tick, Esc -> cancelled
    assert run.step()
    summary = run.finish(bpy.context, cancelled=True)
    assert summary.interrupted and summary.jobs_rendered == 1
    same(before)


def test_submit_failed_and_succeeded_keep_the_sample_and_the_scene(scene, coordinator, tmp_path):
    before = user_state()
    prefs = bpy.context.preferences.system
    prefs.use_online_access = True
    try:
        farm = scene.synthfarm_farm
        farm.out, farm.jobs = str(tmp_path / "farm_out"), 1
        bpy.ops.synthfarm.randomize(seed=3)
        sampled = user_state()
        farm.address = "tcp://127.0.0.1:9"  # nothing listens there
        with pytest.raises(RuntimeError, match="no answer"):
            bpy.ops.synthfarm.farm_submit()
        same(sampled, user_state())
        farm.address = coordinator.clients_endpoint
        assert bpy.ops.synthfarm.farm_submit() == {"FINISHED"}
        same(sampled, user_state())
        bpy.ops.synthfarm.clear_sample()
        same(before, user_state())
    finally:
        prefs.use_online_access = False


def test_a_scene_saved_with_a_sample_renders_without_it(scene, tmp_path):
    """Submit sends the .blend as it is (sample included); the worker takes the sample back on loading."""
    from synthfarm.addon.engine.runner import Runner
    from synthfarm.farm.ui import bundle_scene

    user = {o.name: (tuple(o.location), tuple(o.rotation_euler)) for o in scene.objects}
    bpy.ops.synthfarm.randomize(seed=3)
    recipe, _ = bundle_scene(scene, tmp_path)
    assert "synthfarm_sample" in bpy.data.collections  # the user's scene keeps its sample
    Runner().prepare(recipe, tmp_path)  # opens the copy, as a worker does
    loaded = bpy.context.scene
    assert "synthfarm_sample" not in bpy.data.collections
    assert {o.name: (tuple(o.location), tuple(o.rotation_euler)) for o in loaded.objects} == user


def test_a_users_rigid_body_world_survives_a_physics_drop(scene, tmp_path):
    """physics_drop borrows the user's own rigid body world (their bodies take no part, default settings) and
    gives it back: world, settings, collection and the user's bodies as they were."""
    bpy.context.view_layer.objects.active = scene.objects["Suzanne"]
    bpy.ops.rigidbody.world_add()
    bpy.ops.rigidbody.object_add(type="ACTIVE")
    world = scene.rigidbody_world
    world.substeps_per_frame, world.solver_iterations, world.time_scale = 4, 23, 0.5
    world.point_cache.frame_start, world.point_cache.frame_end = 5, 77
    scene.objects["Suzanne"].rigid_body.mass = 3.5
    data = storage.recipe_data(scene.synthfarm)
    data["randomizers"].insert(1, {"kind": "physics_drop", "targets": ["ball"], "floor": 0.0, "seconds": 0.3})
    storage.store_recipe(scene.synthfarm, parse_recipe_text(yaml.safe_dump(data), TINY.parent))
    before = user_state()
    assert before["rigid_body"]["collection"] == ("ID", "RigidBodyWorld") and before["rigid_body"]["substeps_per_frame"] == 4
    assert bpy.ops.synthfarm.randomize(seed=1) == {"FINISHED"}
    assert bpy.ops.synthfarm.clear_sample() == {"FINISHED"}
    same(before, user_state())
    assert bpy.ops.synthfarm.preview() == {"FINISHED"}
    same(before)
    scene.synthfarm.out, scene.synthfarm.jobs = str(tmp_path / "done"), 1
    assert bpy.ops.synthfarm.render_local() == {"FINISHED"}
    same(before)
    assert scene.objects["Suzanne"].rigid_body.mass == 3.5
    assert [o.name for o in scene.rigidbody_world.collection.objects] == ["Suzanne"]
    with bpy.context.temp_override(scene=scene, point_cache=scene.rigidbody_world.point_cache):
        bpy.ops.ptcache.bake(bake=True)
    assert scene.rigidbody_world.point_cache.is_baked
    baked = user_state(ignore_images=PREVIEW)
    with pytest.raises(RuntimeError, match="baked simulation"):  # refused: a drop would free the user's bake
        bpy.ops.synthfarm.randomize(seed=1)
    assert scene.rigidbody_world.point_cache.is_baked and "synthfarm_sample" not in bpy.data.collections
    same(baked)  # the failed Randomize took back what it had begun
