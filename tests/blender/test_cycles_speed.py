"""A sensor's Cycles speed settings (``cycles:``) reach scene.cycles for its renders, per tier; a sensor that sets
none renders with the scene's own settings, and the scene has them back after the job."""
import json
from pathlib import Path

import bpy
import pytest
import yaml

import synthfarm
from synthfarm.addon.core.recipe import recipe_from_data
from synthfarm.addon.engine import devices, render
from synthfarm.addon.engine.runner import Runner

DATA = Path(__file__).resolve().parents[1] / "data"
TINY = DATA / "tiny.yaml"

FAST = {"adaptive_threshold": 0.2, "max_bounces": 0, "light_tree": False, "persistent_data": False,
        "denoise_quality": "fast", "preview": {"max_bounces": 1, "adaptive_sampling": False}}
OWN = {"adaptive_sampling": True, "max_bounces": 5, "light_tree": True, "denoise_quality": "balanced"}  # the scene's


def two_sensors():
    data = yaml.safe_load(TINY.read_text())
    plain = data["sensors"][0]
    fast = {**plain, "name": "fast", "denoise": True, "samples": 2, "cycles": FAST}
    data["sensors"] = [fast, {**plain, "name": "plain", "denoise": True, "samples": 2}]
    return recipe_from_data(data, base_dir=DATA)


def cycles_of(out: Path, sensor: str) -> dict:
    return json.loads((out / "metadata" / f"0000000000-0000-{sensor}-meta.json").read_text())["cycles"]


@pytest.mark.parametrize("preview", [False, True])
def test_settings_reach_cycles_per_sensor_and_tier_and_the_scene_keeps_its_own(tmp_path, preview):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    for key, value in OWN.items():
        setattr(scene.cycles, render.SPEED[key], value.upper() if key in render.ENUM_SPEED else value)
    scene.cycles.adaptive_threshold = 0.03
    runner = Runner(use_current_scene=True, device="cpu")
    synthfarm.render(two_sensors(), jobs=1, out=tmp_path, preview=preview, progress=False, runner=runner)

    fast = cycles_of(tmp_path, "fast")
    if preview:  # the preview tier's own over the full tier's; the preview never denoises
        assert fast["max_bounces"] == 1 and fast["adaptive_sampling"] is False and fast["denoiser"] is None
    else:
        assert fast["max_bounces"] == 0 and fast["adaptive_sampling"] is True
        assert fast["adaptive_threshold"] == pytest.approx(0.2) and fast["denoiser"] == "openimagedenoise"
        assert fast["denoise_quality"] == "fast"
    assert fast["light_tree"] is False and fast["persistent_data"] is False

    plain = cycles_of(tmp_path, "plain")  # rendered after "fast" in the same frame: nothing of it is left
    assert {key: plain[key] for key in OWN} == OWN
    assert plain["adaptive_threshold"] == pytest.approx(0.03) and plain["persistent_data"] is True
    assert plain["denoiser"] == (None if preview else "openimagedenoise")

    for key, value in OWN.items():  # the scene's own settings are back after the job
        got = getattr(scene.cycles, render.SPEED[key])
        assert (got.lower() if key in render.ENUM_SPEED else got) == value
    assert scene.cycles.adaptive_threshold == pytest.approx(0.03)


def test_optix_denoiser_is_refused_on_the_cpu_with_the_fix():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    with pytest.raises(render.RenderError, match="optix needs an NVIDIA GPU.*choose openimagedenoise"):
        render.configure(scene, resolution=(64, 48), samples=1, denoise=True,
                         device=devices.select_device(scene, "cpu"), speed={"denoiser": "optix"})


@pytest.mark.parametrize("preview", [False, True])
def test_world_map_is_set_for_the_sensor_that_asks_and_the_world_gets_its_own_back(tmp_path, preview):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.world = bpy.data.worlds.new("users_world")  # the user's world: the recipe has no world randomizer
    scene.world.cycles.sampling_method, scene.world.cycles.sample_map_resolution = "MANUAL", 333
    data = yaml.safe_load(TINY.read_text())
    data["randomizers"] = [r for r in data["randomizers"] if r["kind"] != "world"]
    plain = data["sensors"][0]
    data["sensors"] = [{**plain, "name": "fast", "cycles": {"world_map": 64, "preview": {"world_map": 0}}},
                       {**plain, "name": "plain"}, {**plain, "name": "last", "cycles": {"world_map": 128}}]
    seen = []  # what each render call saw, read by Blender's own render_pre handler

    def record(scene_, *_):
        seen.append((scene_.camera.name, scene_.world.cycles.sampling_method, scene_.world.cycles.sample_map_resolution))

    bpy.app.handlers.render_pre.append(record)
    try:
        synthfarm.render(recipe_from_data(data, base_dir=DATA), jobs=1, out=tmp_path, preview=preview, progress=False,
                         runner=Runner(use_current_scene=True, device="cpu"))
    finally:
        bpy.app.handlers.render_pre.remove(record)
    fast = ("NONE", 333) if preview else ("MANUAL", 64)
    assert [s[1:] for s in seen] == [fast, ("MANUAL", 333), ("MANUAL", 128)]  # "plain" keeps nothing of "fast"
    assert cycles_of(tmp_path, "fast")["world_map"] == (0 if preview else 64)
    assert cycles_of(tmp_path, "plain")["world_map"] == 333
    world = bpy.data.worlds["users_world"]
    assert (world.cycles.sampling_method, world.cycles.sample_map_resolution) == ("MANUAL", 333)


def test_world_map_out_of_blenders_range_is_refused_with_the_field():
    data = yaml.safe_load(TINY.read_text())
    data["sensors"][0]["cycles"] = {"preview": {"world_map": 2}}
    with pytest.raises(Exception, match=r"(?s)cycles.*world_map is 0 \(no importance map\) or 4 to 8192"):
        recipe_from_data(data, base_dir=DATA)
