"""Cameras through the whole runner: distorted lenses (labels against the rendered masks and OpenCV), rigs
and a stereo pair (disparity against the right view), depth of field and motion blur (labels unchanged)."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from synthfarm.addon.core.exr import read_depth, read_exr
from synthfarm.addon.core.groundtruth import rle_decode
from synthfarm.addon.core.recipe import recipe_from_data
from synthfarm.addon.core.dataset.native import read_png
from synthfarm.addon.engine.api import render

W, H = 96, 72


def scene(sensors, randomizers=(), frames=1, generators=None, **extra):
    return recipe_from_data({
        "name": "cams", "frames": frames, **extra,
        "generators": generators or [
            {"name": "floor", "kind": "primitive", "shape": "plane", "size": [6, 6, 1], "color": [0.5, 0.5, 0.5]},
            {"name": "cubes", "kind": "primitive", "shape": "cube", "count": 5, "size": 0.25, "class": "cube",
             "color": {"uniform": [[0.1, 0.1, 0.1], [1, 1, 1]]}}],
        "randomizers": [{"kind": "scatter_on_surface", "targets": ["cubes"], "area": [1.6, 1.2, 0]},
                        {"kind": "camera_orbit", "radius": 2.2, "height": 1.4, "azimuth": -70,
                         "look_at": [0, 0, 0.1]},
                        {"kind": "lights", "count": 1, "type": "SUN", "energy": 3.0},
                        {"kind": "world", "color": [0.3, 0.3, 0.3]}, *randomizers],
        "sensors": sensors})


def frames_of(out: Path, view: str):
    return [json.loads(p.read_text()) for p in sorted((out / "annotations").glob(f"*-{view}-ann.json"))]


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


@pytest.mark.parametrize("model,coeffs", [("brown_conrady", {"k1": -0.35, "k2": 0.1, "p1": 0.002}),
                                          ("fisheye", {"k1": 0.1, "k2": -0.02})])
def test_distorted_image_and_labels_agree(tmp_path, model, coeffs):
    recipe = scene([{"name": "cam", "kind": "camera", "resolution": [W, H], "samples": 1, "fov": 80,
                     "lens_model": model, "principal_point": [3, -2], **coeffs}])
    render(recipe, 1, tmp_path, progress=False)
    ann = frames_of(tmp_path, "cam")[0]
    meta = json.loads(next((tmp_path / "metadata").glob("*-meta.json")).read_text())
    lens = ann["camera"]["lens"]
    assert lens["model"] == model and lens["coefficients"]["k1"] == coeffs["k1"]
    assert meta["camera"]["render_resolution"] != [W, H]  # rendered wider, then remapped
    K = np.array(ann["camera"]["K"])
    assert K[0, 2] == pytest.approx(W / 2 + 3) and K[1, 2] == pytest.approx(H / 2 - 2)
    index = read_png(next((tmp_path / "masks").glob("*.png")))
    assert index.shape == (H, W) and set(np.unique(index)) <= {0} | {o["instance_id"] for o in ann["objects"]}
    depth = read_depth(next((tmp_path / "depth").glob("*.exr")))
    checked = 0
    for obj in ann["objects"]:
        if not obj["visible_pixels"] or obj["visibility"] < 0.98 or obj["truncation"] > 0:
            continue
        visible, amodal = rle_decode(obj["segmentation"]), rle_decode(obj["amodal_segmentation"])
        assert (index == obj["instance_id"]).sum() == obj["visible_pixels"]
        assert iou(visible, amodal) > 0.85, obj["name"]  # geometry through the lens = the rendered, remapped ids
        # the box's corners through OpenCV's own projection (OpenCV puts pixel centres on integers)
        corners = np.array(obj["box3d"]["camera"])
        D = np.array(lens["opencv"]["D"])
        K_cv = np.array(lens["opencv"]["K"])
        if model == "fisheye":
            theirs, _ = cv2.fisheye.projectPoints(corners.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K_cv, D)
        else:
            theirs, _ = cv2.projectPoints(corners, np.zeros(3), np.zeros(3), K_cv, D)
        assert np.abs(np.array(obj["box3d"]["image"]) - 0.5 - theirs.reshape(-1, 2)).max() < 0.5
        # the cube's centre projects onto its own pixels, at its depth
        centre = corners.mean(axis=0)
        u, v = (theirs.reshape(-1, 2).mean(axis=0) + 0.5).astype(int)  # near enough for a small cube
        x, y = obj["bbox"][0] + obj["bbox"][2] / 2, obj["bbox"][1] + obj["bbox"][3] / 2
        assert abs(u - x) < 3 and abs(v - y) < 3
        assert depth[int(y), int(x)] < centre[2]
        checked += 1
    assert checked >= 2


def test_stereo_pair_disparity_matches_the_right_view_and_depth(tmp_path):
    baseline = 0.15
    recipe = scene([{"name": "cam", "kind": "camera", "resolution": [W, H], "samples": 1, "fov": 60,
                     "stereo_baseline": baseline, "outputs": ["rgb", "depth", "instance_mask", "disparity"]}])
    render(recipe, 1, tmp_path, progress=False)
    left, right = frames_of(tmp_path, "cam")[0], frames_of(tmp_path, "cam_right")[0]
    L, R = np.array(left["camera"]["world_to_cam"]), np.array(right["camera"]["world_to_cam"])
    relative = R @ np.linalg.inv(L)  # left camera -> right camera
    assert np.allclose(relative[:3, :3], np.eye(3), atol=1e-6)
    assert np.allclose(relative[:3, 3], [-baseline, 0, 0], atol=1e-6)  # the right camera sits at +B along x
    disparity = read_exr(tmp_path / "disparity" / "0000000000-0000-cam.exr")["Z"]
    depth = read_depth(tmp_path / "depth" / "0000000000-0000-cam.exr")
    f = np.array(left["camera"]["K"])[0, 0]
    hit = np.isfinite(depth)
    assert np.allclose(disparity[hit], f * baseline / depth[hit], rtol=1e-5)
    assert (disparity[~hit] == 0).all()
    ids_left = read_png(tmp_path / "masks" / "0000000000-0000-cam.png").astype(int)
    ids_right = read_png(tmp_path / "masks" / "0000000000-0000-cam_right.png").astype(int)
    rows, cols = np.nonzero(ids_left > 0)
    x_right = np.floor(cols + 0.5 - disparity[rows, cols]).astype(int)
    inside = x_right >= 0
    agree = ids_right[rows[inside], x_right[inside]] == ids_left[rows[inside], cols[inside]]
    assert agree.mean() > 0.95  # the rest: occluded in the right view, or edge pixels
    # OpenCV's semi-global matcher on the rendered pair agrees with the ground truth where it is confident
    gray = [cv2.cvtColor(cv2.imread(str(tmp_path / "images" / f"0000000000-0000-{v}.png")), cv2.COLOR_BGR2GRAY)
            for v in ("cam", "cam_right")]
    sgbm = cv2.StereoSGBM_create(minDisparity=0, numDisparities=32, blockSize=5, uniquenessRatio=15)
    measured = sgbm.compute(gray[0], gray[1]).astype(np.float32) / 16
    confident = (measured > 0) & hit
    assert confident.sum() > 200
    assert np.median(np.abs(measured[confident] - disparity[confident])) < 1.0


def test_rig_moves_as_one(tmp_path):
    recipe = scene([{"name": "front", "kind": "camera", "resolution": [32, 24], "samples": 1},
                    {"name": "side", "kind": "camera", "resolution": [32, 24], "samples": 1, "mount": "front",
                     "mount_offset": [0.2, -0.1, 0.05], "mount_rotation": [0, 30, 0]}])
    render(recipe, 2, tmp_path, progress=False, seed=4)
    for job in (0, 1):
        front = json.loads((tmp_path / "annotations" / f"{job:010d}-0000-front-ann.json").read_text())
        side = json.loads((tmp_path / "annotations" / f"{job:010d}-0000-side-ann.json").read_text())
        F, S = (np.linalg.inv(np.array(a["camera"]["world_to_cam"])) for a in (front, side))  # cam -> world
        relative = np.linalg.inv(F) @ S  # side camera in the front camera's frame
        assert np.allclose(relative[:3, 3], [0.2, -0.1, 0.05], atol=1e-6)
        turn = np.radians(30)
        assert np.allclose(relative[:3, :3], [[np.cos(turn), 0, np.sin(turn)], [0, 1, 0],
                                              [-np.sin(turn), 0, np.cos(turn)]], atol=1e-6)


def test_depth_of_field_and_motion_blur_change_pixels_not_labels(tmp_path):
    base = {"name": "cam", "kind": "camera", "resolution": [W, H], "samples": 4}
    motion = [{"kind": "object_motion", "targets": ["cubes"], "velocity": [2.0, 0, 0]}]
    outs = {}
    for name, extra in (("plain", {}), ("blur", {"shutter": 0.8}), ("dof", {"fstop": 0.2, "focus_distance": 0.5})):
        out = tmp_path / name
        render(scene([{**base, **extra}], motion, frame_rate=10), 1, out, progress=False)
        outs[name] = out
    stem = "0000000000-0000-cam"
    labels = {n: json.loads((o / "annotations" / f"{stem}-ann.json").read_text())["objects"] for n, o in outs.items()}
    for name in ("blur", "dof"):
        assert [o["segmentation"] for o in labels[name]] == [o["segmentation"] for o in labels["plain"]]
        rgb = [cv2.imread(str(outs[n] / "images" / f"{stem}.png")).astype(int) for n in ("plain", name)]
        assert np.abs(rgb[0] - rgb[1]).mean() > 1.0, name


def test_cameras_redraw_until_the_target_is_seen(tmp_path):
    generators = [
        {"name": "floor", "kind": "primitive", "shape": "plane", "size": [8, 8, 1], "color": [0.5, 0.5, 0.5]},
        {"name": "target", "kind": "primitive", "shape": "cube", "size": 0.4, "class": "target"},
        {"name": "wall", "kind": "primitive", "shape": "cube", "size": [4, 0.1, 2.0], "location": [0, -0.8, 0]}]
    shell = {"kind": "camera_shell", "radius": 3, "elevation": {"uniform": [5, 15]}, "azimuth": {"uniform": [180, 360]},
             "look_at": [0, 0, 0.2]}  # the wall hides the target from most of these directions
    seen = {}
    for name, extra in (("free", {}), ("looking", {"must_see": ["target"], "min_visible": 0.8, "max_draws": 40})):
        recipe = recipe_from_data({"name": "look", "generators": generators,
                                   "randomizers": [{**shell, **extra}, {"kind": "lights", "type": "SUN", "energy": 2}],
                                   "sensors": [{"name": "cam", "kind": "camera", "resolution": [64, 48], "samples": 1}]})
        render(recipe, 4, tmp_path / name, progress=False, seed=3)
        seen[name] = []
        for job in range(4):
            ann = json.loads((tmp_path / name / "annotations" / f"{job:010d}-0000-cam-ann.json").read_text())
            meta = json.loads((tmp_path / name / "metadata" / f"{job:010d}-0000-cam-meta.json").read_text())
            target = next(o for o in ann["objects"] if o["class"] == "target")
            seen[name].append((target["visibility"], meta["sampled"]["randomizers/camera_shell"]))
    assert min(v for v, _ in seen["free"]) < 0.5  # unchecked, some cameras look at the wall
    for visibility, log in seen["looking"]:
        assert log["satisfied"] is True and visibility >= 0.7  # the rendered visibility agrees with the check
    rejected = [r for _, log in seen["looking"] for r in log["rejected_draws"]]
    assert rejected and all(r["cameras"][0]["objects"]["target.000"]["visible"] < 0.8 for r in rejected)
