"""Video jobs: keyframes of a base .blend play, randomizers move things over time, optical flow warps one
frame onto the next, track ids stay, an MP4 per job (read back with PyAV), preview is one frame."""
import json

import av
import bpy
import numpy as np
import pytest

from synthfarm.addon.core.dataset.native import read_png
from synthfarm.addon.core.exr import read_exr
from synthfarm.addon.core.flow import warp
from synthfarm.addon.core.recipe import recipe_from_data
from synthfarm.addon.engine.api import render

W, H = 80, 60
CAM = {"name": "cam", "kind": "camera", "resolution": [W, H], "samples": 1, "fov": 60}


def recipe(randomizers, frames=4, sensors=None, **extra):
    return recipe_from_data({
        "name": "video", "frames": frames, "frame_rate": 12, **extra,
        "generators": [
            {"name": "floor", "kind": "primitive", "shape": "plane", "size": [8, 8, 1], "color": [0.5, 0.5, 0.5]},
            {"name": "cubes", "kind": "primitive", "shape": "cube", "count": 3, "size": 0.3, "class": "cube"}],
        "randomizers": [{"kind": "scatter_on_surface", "targets": ["cubes"], "area": [1.5, 1.0, 0]},
                        {"kind": "lights", "count": 1, "type": "SUN", "energy": 3.0},
                        {"kind": "world", "color": [0.3, 0.3, 0.3]}, *randomizers],
        "sensors": sensors or [{**CAM, "outputs": ["rgb", "depth", "instance_mask", "flow", "video"]}]})


def interior(ids):
    """Object pixels whose four neighbours show the same object (edge pixels are aliased either way)."""
    same = ids > 0
    for axis in (0, 1):
        for step in (1, -1):
            same &= np.roll(ids, step, axis=axis) == ids
    return same


def load(out, k, kind):
    stem = f"0000000000-{k:04d}-cam"
    if kind == "ids":
        return read_png(out / "masks" / f"{stem}.png").astype(np.uint16)
    if kind in ("flow_forward", "flow_backward"):
        channels = read_exr(out / kind / f"{stem}.exr")
        return np.stack([channels["X"], channels["Y"]], axis=-1)
    return json.loads((out / "annotations" / f"{stem}-ann.json").read_text())


@pytest.mark.parametrize("motion", ["objects", "camera"])
def test_flow_warps_the_next_frame_onto_this_one(tmp_path, motion):
    moves = ([{"kind": "camera_orbit", "radius": 3, "height": 2, "azimuth": -90, "look_at": [0, 0, 0]},
              {"kind": "object_motion", "targets": ["cubes"], "velocity": [3.0, 1.5, 0], "spin": [0, 0, 90]}]
             if motion == "objects" else
             [{"kind": "camera_path", "start": [-2, -3, 2], "end": [2, -2.6, 2.2], "via": [0, -3.1, 2.4],
               "look_at": [0, 0, 0]}, {"kind": "camera_shake", "amplitude": 0.01, "angle": 0.3}])
    out = tmp_path / motion
    render(recipe(moves), 1, out, progress=False)
    checked = 0
    for k in range(3):
        ids_now, ids_next = load(out, k, "ids"), load(out, k + 1, "ids")
        forward = load(out, k, "flow_forward")
        assert np.abs(forward[ids_now > 0]).mean() > 2  # things moved by pixels
        warped = warp(ids_next, forward, nearest=True)
        objects = interior(ids_now)
        agree = warped[objects] == ids_now[objects]
        assert agree.mean() > 0.95, (k, agree.mean())  # the rest: occluded or leaving the frame
        still = warp(ids_next, np.zeros_like(forward), nearest=True)  # without the flow it would not line up
        assert (still[objects] == ids_now[objects]).mean() < agree.mean() - 0.1
        backward = load(out, k + 1, "flow_backward")
        back = warp(ids_now, backward, nearest=True)
        objects = interior(ids_next)
        assert (back[objects] == ids_next[objects]).mean() > 0.95
        checked += 1
    assert checked == 3
    meta = json.loads((out / "metadata" / "0000000000-0001-cam-meta.json").read_text())
    assert "forward[r, c]" in meta["flow"] and meta["frame_rate"] == 12
    # track ids: the same object keeps its instance id in every frame
    names = [{o["instance_id"]: o["name"] for o in load(out, k, "ann")["objects"]} for k in range(4)]
    assert all(n == names[0] for n in names)
    # the MP4 of the job: every frame, readable by FFmpeg
    with av.open(str(out / "videos" / "0000000000-0000-cam.mp4")) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        rate = container.streams.video[0].average_rate
    assert len(decoded) == 4 and decoded[0].shape == (H, W, 3) and rate == 12


def test_base_scene_keyframes_play(tmp_path):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.mesh.primitive_cube_add(size=0.5, location=(0, 0, 0.25))
    cube = bpy.context.active_object
    cube.name = "Mover"
    cube["synthfarm_class"] = "mover"
    scene = bpy.context.scene
    scene.frame_start = 10
    cube.keyframe_insert("location", frame=10)
    cube.location.x = 1.0
    cube.keyframe_insert("location", frame=13)
    blend = tmp_path / "base.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    r = recipe([{"kind": "camera_orbit", "radius": 4, "height": 2, "azimuth": -90, "look_at": [0.5, 0, 0]}],
               sensors=[{**CAM, "outputs": ["rgb", "instance_mask"]}], scene={"base": str(blend)})
    render(r, 1, tmp_path / "out", progress=False)
    xs = []
    for k in range(4):
        ann = load(tmp_path / "out", k, "ann")
        mover = next(o for o in ann["objects"] if o["name"] == "Mover")
        world_to_cam = np.array(ann["camera"]["world_to_cam"])
        t = np.array(mover["pose"]["t"])
        xs.append((np.linalg.inv(world_to_cam) @ np.r_[t, 1])[0])
    assert xs[0] == pytest.approx(0.0, abs=1e-4) and xs[-1] == pytest.approx(1.0, abs=1e-4)
    assert all(a < b for a, b in zip(xs, xs[1:]))


def test_preview_renders_one_frame_of_a_video_job(tmp_path):
    r = recipe([{"kind": "camera_orbit", "radius": 3, "height": 2, "speed": 10}])
    summary = render(r, 1, tmp_path, progress=False, preview=True)
    assert summary.frames == 1
    assert not (tmp_path / "videos").exists() or not any((tmp_path / "videos").iterdir())
