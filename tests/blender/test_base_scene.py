"""A base .blend is exactly as loaded before every job: transforms (all rotation modes, deltas, parents),
visibility, materials and modifiers of every object, however many jobs ran before."""
import math
from pathlib import Path

import bpy
import pytest
import yaml

from synthfarm.addon.core.jobs import make_jobs
from synthfarm.addon.core.recipe import load_recipe
from synthfarm.addon.core.dataset.native import DatasetWriter
from synthfarm.addon.engine.runner import Runner


def _build_scene(path: Path) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    mat = bpy.data.materials.new("painted")
    bpy.ops.mesh.primitive_cube_add(size=0.3, location=(0.4, -0.3, 0.2), rotation=(0.3, 0.5, 1.1))
    tilted = bpy.context.object
    tilted.name, tilted.scale = "tilted", (1.0, 2.0, 0.5)
    tilted.data.materials.append(mat)
    tilted["synthfarm_class"] = "widget"
    tilted.modifiers.new("bevel", "BEVEL").width = 0.01
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.1, location=(0.1, 0.2, 0.6))
    child = bpy.context.object
    child.name = "child"
    child.rotation_mode = "QUATERNION"
    child.rotation_quaternion = (0.9, 0.1, 0.3, 0.2)
    child.delta_location = (0.01, 0.02, 0.03)
    child.delta_rotation_euler = (0.0, 0.2, 0.0)
    child.parent = tilted
    child.matrix_parent_inverse = tilted.matrix_world.inverted()
    child["synthfarm_class"] = "ball"
    bpy.ops.mesh.primitive_cylinder_add(radius=0.1, depth=0.4, location=(-0.5, 0.1, 0.2))
    axis = bpy.context.object
    axis.name, axis.rotation_mode = "axis", "AXIS_ANGLE"
    axis.rotation_axis_angle = (0.7, 0.2, 0.3, 0.9)
    axis.hide_render = True
    axis["synthfarm_class"] = "hidden"
    cam = bpy.data.objects.new("user camera", bpy.data.cameras.new("user camera"))
    scene.collection.objects.link(cam)
    cam.location, cam.rotation_euler = (2.0, -2.0, 1.5), (1.1, 0.0, 0.8)
    scene.camera = cam
    bpy.ops.wm.save_as_mainfile(filepath=str(path))


def _state() -> dict:
    def obj_state(o):
        return {"world": [tuple(row) for row in o.matrix_world], "loc": tuple(o.location),
                "rot": (o.rotation_mode, tuple(o.rotation_euler), tuple(o.rotation_quaternion),
                        tuple(o.rotation_axis_angle)), "scale": tuple(o.scale),
                "delta": (tuple(o.delta_location), tuple(o.delta_rotation_euler), tuple(o.delta_scale)),
                "parent": o.parent.name if o.parent else None,
                "parent_inverse": [tuple(row) for row in o.matrix_parent_inverse],
                "hide": (o.hide_render, o.hide_viewport, o.hide_get()),
                "materials": [s.material.name if s.material else None for s in o.material_slots],
                "modifiers": [(m.name, m.type) for m in o.modifiers]}
    scene = bpy.context.scene
    return {"objects": {o.name: obj_state(o) for o in scene.objects}, "camera": scene.camera.name,
            "world": scene.world.name if scene.world else None}


@pytest.mark.blender
def test_every_base_object_is_as_loaded_before_every_job(tmp_path):
    blend = tmp_path / "user scene.blend"
    _build_scene(blend)
    recipe_path = tmp_path / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump({
        "version": 1, "name": "base-scene", "scene": {"base": blend.name},
        "generators": [{"name": "box", "kind": "primitive", "shape": "cube", "size": 0.2, "class": "box"}],
        "randomizers": [
            {"kind": "pose_in_volume", "targets": ["box"]},
            {"kind": "camera_orbit", "radius": {"uniform": [2, 3]}, "height": 1.0, "look_at": [0, 0, 0.2]},
            {"kind": "lights", "count": 1, "type": "SUN", "energy": 3.0}],
        "sensors": [{"name": "cam", "kind": "camera", "resolution": [48, 36], "samples": 1}]}))
    recipe = load_recipe(recipe_path)
    runner = Runner()
    runner.prepare(recipe, tmp_path)
    loaded = _state()
    assert loaded["objects"]["child"]["parent"] == "tilted"
    writer = DatasetWriter(tmp_path / "out")
    writer.open(recipe_path.read_text(), {"recipe_hash": recipe.hash()}, {"name": recipe.name})
    reports = []
    for job in make_jobs(recipe, 3, seed=4):
        reports.append(runner.run_job(recipe, tmp_path, job, writer, tmp_path / "scratch"))
        assert _state() == loaded, f"the base scene changed after job {job.id}"
    labelled = [len(r.stems) for r in reports]
    assert labelled == [1, 1, 1]
    # the labelled base objects are in every frame's labels, where the file has them
    for stem in (r.stems[0] for r in reports):
        ann = (tmp_path / "out" / "annotations" / f"{stem}-ann.json").read_text()
        assert '"widget"' in ann and '"ball"' in ann
    assert not math.isnan(loaded["objects"]["tilted"]["loc"][0])
