"""The whole path with real Blender: recipe -> scene -> one Cycles render -> labels -> dataset."""
import json
import math
import subprocess
import sys
from pathlib import Path

import bpy  # noqa: F401  (real Blender is required here)
import numpy as np
import pytest
import yaml

import synthfarm
from synthfarm.addon.core.dataset.native import read_png
from synthfarm.addon.core.exr import read_depth, read_normals
from synthfarm.addon.core.groundtruth import rle_decode
from synthfarm.addon.core.jobs import make_jobs
from synthfarm.addon.core.recipe import load_recipe, recipe_from_data
from synthfarm.addon.engine.runner import Runner
from synthfarm.addon.engine.scene import bpy_data_counts

DATA = Path(__file__).resolve().parents[1] / "data"
TINY = DATA / "tiny.yaml"


def frames_of(out: Path):
    return sorted((out / "annotations").glob("*-ann.json"))


def load(path):
    return json.loads(Path(path).read_text())


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    summary = synthfarm.render(TINY, jobs=2, out=out, seed=3, progress=False)
    assert summary.jobs_rendered == 2 and summary.frames == 2
    return out


def test_dataset_layout(tiny_dataset):
    out = tiny_dataset
    info = yaml.safe_load((out / "dataset.yaml").read_text())
    assert info["recipe_hash"] == load_recipe(TINY).hash()
    assert (out / "recipe.yaml").read_text() == TINY.read_text()
    jobs = [json.loads(line) for line in (out / "jobs.jsonl").read_text().splitlines()]
    assert {j["id"] for j in jobs if j["status"] == "done"} == {0, 1}
    stem = "0000000001-0000-cam"
    for sub, name in [("images", f"{stem}.png"), ("depth", f"{stem}.exr"), ("normals", f"{stem}.exr"),
                      ("masks", f"{stem}.png"), ("semantic", f"{stem}.png"), ("annotations", f"{stem}-ann.json"),
                      ("metadata", f"{stem}-meta.json")]:
        assert (out / sub / name).is_file(), f"{sub}/{name} missing"
    assert not list(out.rglob("*.tmp*"))
    meta = load(out / "metadata" / f"{stem}-meta.json")
    assert meta["device"]["kind"] == "CPU"
    assert meta["seed"] == make_jobs(load_recipe(TINY), 2, seed=3)[1].seed
    assert "randomizers/camera_orbit" in meta["sampled"] and "height" in meta["sampled"]["randomizers/camera_orbit"]
    assert meta["versions"]["blender"] == bpy.app.version_string
    assert np.array(meta["camera"]["K"]).shape == (3, 3)


def test_masks_hold_exactly_the_instance_ids(tiny_dataset):
    for ann_path in frames_of(tiny_dataset):
        ann = load(ann_path)
        stem = ann_path.name.removesuffix("-ann.json")
        mask = read_png(tiny_dataset / "masks" / f"{stem}.png")
        assert mask.dtype == np.uint16 and mask.shape == (48, 64)
        ids = {o["instance_id"] for o in ann["objects"]}
        assert {o["class"] for o in ann["objects"]} == {"box", "ball"}  # the floor is unlabelled
        assert set(np.unique(mask)) == ids | {0}
        semantic = read_png(tiny_dataset / "semantic" / f"{stem}.png")
        for obj in ann["objects"]:
            assert set(np.unique(semantic[mask == obj["instance_id"]])) == {obj["class_id"]}
            assert ann["classes"][obj["class_id"] - 1] == obj["class"]


def test_visible_box_is_the_mask_extent(tiny_dataset):
    for ann_path in frames_of(tiny_dataset):
        ann = load(ann_path)
        mask = read_png(tiny_dataset / "masks" / ann_path.name.replace("-ann.json", ".png"))
        for obj in ann["objects"]:
            rows, cols = np.nonzero(mask == obj["instance_id"])
            assert obj["visible_pixels"] == len(rows)
            assert obj["bbox"] == [int(cols.min()), int(rows.min()), int(cols.max() - cols.min() + 1),
                                   int(rows.max() - rows.min() + 1)]
            assert np.array_equal(rle_decode(obj["segmentation"]), mask == obj["instance_id"])


def test_depth_at_a_known_object_matches_its_distance(tmp_path):
    data = yaml.safe_load(TINY.read_text())
    data["generators"] = data["generators"][:2]  # floor and a 0.4 m cube standing at the origin
    data["modifiers"] = []
    # camera on the +x axis, at the height of the cube's centre, looking at the centre: the front face is
    # 0.2 m in front of the centre, so the planar depth at the image centre is radius - 0.2.
    data["randomizers"][0].update(radius=3.0, height=0.0, azimuth=0.0)
    data["sensors"][0]["resolution"] = [65, 49]
    recipe = recipe_from_data(data)
    synthfarm.render(recipe, jobs=1, out=tmp_path, progress=False)
    depth = read_depth(tmp_path / "depth" / "0000000000-0000-cam.exr")
    normals = read_normals(tmp_path / "normals" / "0000000000-0000-cam.exr")
    assert depth.shape == (49, 65)
    assert depth[24, 32] == pytest.approx(2.8, abs=1e-3)
    assert math.isinf(depth[0, 0]) or depth[0, 0] > 2.8  # background or floor, never closer
    assert normals[24, 32, 0] == pytest.approx(1.0, abs=1e-3)  # the face looks along +x


def test_same_seed_same_annotations_other_seed_differs(tmp_path):
    runs = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        synthfarm.render(TINY, jobs=1, out=tmp_path / name, seed=seed, progress=False)
        runs[name] = (tmp_path / name / "annotations" / "0000000000-0000-cam-ann.json").read_bytes()
    assert runs["a"] == runs["b"]
    pixels = [read_png(tmp_path / n / "images" / "0000000000-0000-cam.png") for n in "ab"]
    assert np.array_equal(*pixels)  # same build, same device: same pixels
    for folder in ("images", "masks", "semantic"):  # and the same bytes: no time stamps in the files
        png = [(tmp_path / n / folder / "0000000000-0000-cam.png").read_bytes() for n in "ab"]
        assert png[0] == png[1] and b"tEXt" not in png[0] and b"tIME" not in png[0]
    assert runs["a"] != runs["c"]


def test_resume_after_interruption(tmp_path):
    calls = []

    def stop_after_two(done, total):
        calls.append(done)
        if done == 2:
            raise KeyboardInterrupt

    first = synthfarm.render(TINY, jobs=4, out=tmp_path, progress=stop_after_two)
    assert first.interrupted and first.jobs_rendered == 2
    assert len(frames_of(tmp_path)) == 2 and not list(tmp_path.rglob("*.tmp*"))
    assert yaml.safe_load((tmp_path / "dataset.yaml").read_text())["complete"] is False
    before = {p.name: p.stat().st_mtime_ns for p in frames_of(tmp_path)}
    second = synthfarm.render(TINY, jobs=4, out=tmp_path, progress=False)
    assert (second.jobs_skipped, second.jobs_rendered) == (2, 2)
    assert len(frames_of(tmp_path)) == 4
    assert all(p.stat().st_mtime_ns == before[p.name] for p in frames_of(tmp_path) if p.name in before)
    assert yaml.safe_load((tmp_path / "dataset.yaml").read_text())["complete"] is True


def test_fifty_jobs_do_not_grow_bpy_data(tmp_path):
    from synthfarm.addon.core.dataset.native import DatasetWriter

    recipe = load_recipe(TINY)
    runner = Runner()
    writer = DatasetWriter(tmp_path)
    writer.open(TINY.read_text(), {"recipe_hash": recipe.hash()}, {"name": "tiny"})
    counts = []
    for job in make_jobs(recipe, 50, seed=1, preview=True):
        runner.run_job(recipe, TINY.parent, job, writer, tmp_path / "scratch")
        counts.append(bpy_data_counts())
    assert counts[-1] == counts[0], {k: (counts[0][k], counts[-1][k]) for k in counts[0]
                                     if counts[0][k] != counts[-1][k]}
    assert len(frames_of(tmp_path)) == 50


def test_scene_generator_uses_the_base_blend_and_restores_it(tmp_path):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    for name, loc in (("Mug", (0.3, 0, 0)), ("Plate", (-0.3, 0, 0)), ("Table", (0, 0, -0.5))):
        bpy.ops.mesh.primitive_cube_add(size=0.2, location=loc)
        bpy.context.active_object.name = name
    bpy.data.objects["Table"]["synthfarm_class"] = "table"  # labelled in the .blend by the user
    blend = tmp_path / "kitchen.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    data = yaml.safe_load(TINY.read_text())
    data["scene"] = {"base": str(blend)}
    data["generators"] = [{"name": "dishes", "kind": "scene", "objects": ["Mug", "Plate"], "class": "dish"}]
    data["modifiers"] = []
    data["randomizers"].insert(0, {"kind": "pose_in_volume", "targets": ["dishes"],
                                   "position": {"uniform": [[-0.2, -0.2, 0], [0.2, 0.2, 0.1]]}})
    recipe = recipe_from_data(data, base_dir=tmp_path)
    runner = Runner()
    synthfarm.render(recipe, jobs=2, out=tmp_path / "out", progress=False, runner=runner)
    ann = load(tmp_path / "out" / "annotations" / "0000000001-0000-cam-ann.json")
    assert sorted((o["name"], o["class"]) for o in ann["objects"]) == [
        ("Mug", "dish"), ("Plate", "dish"), ("Table", "table")]
    assert ann["classes"] == ["dish", "table"]
    mug = bpy.data.objects["Mug"]  # after the jobs, the base scene is as the user saved it
    assert tuple(mug.location) == pytest.approx((0.3, 0, 0)) and "synthfarm_class" not in mug
    assert [o.name for o in bpy.context.scene.objects] == ["Mug", "Plate", "Table"]


def test_lens_by_fov_and_denoise(tmp_path):
    data = yaml.safe_load(TINY.read_text())
    data["sensors"][0].update(fov=90, denoise=True, samples=2)
    synthfarm.render(recipe_from_data(data, base_dir=DATA), jobs=1, out=tmp_path, progress=False)
    meta = load(tmp_path / "metadata" / "0000000000-0000-cam-meta.json")
    K = np.array(meta["camera"]["K"])
    assert K[0, 0] == pytest.approx(32.0, rel=1e-4)  # 90 degrees across 64 px: f = 32 px
    assert meta["sampled"]["sensors/cam"]["fov"] == 90 and meta["denoise"] is True


def test_frames_are_written_on_the_writer_thread_not_the_render_thread(tmp_path, monkeypatch):
    """Every frame file is fsynced by the writer thread, not by the render thread (which renders the next job
    meanwhile); a job's "done" line is fsynced after its annotation's folder; the dataset is complete. Under
    Blender 5.0 (Python 3.11) no thread runs beside bpy (core/threads.py): everything on the render thread."""
    import os
    import threading

    from synthfarm.addon.core.threads import threads_beside_bpy
    from synthfarm.addon.engine import render

    events = []
    fsync, render_frame = os.fsync, render.render_frame

    def recording_fsync(fd):
        fsync(fd)
        events.append(("fsync", Path(os.readlink(f"/proc/self/fd/{fd}")), threading.current_thread().name))

    def recording_render(*args):
        events.append(("render", None, threading.current_thread().name))
        return render_frame(*args)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(render, "render_frame", recording_render)
    synthfarm.render(TINY, jobs=3, out=tmp_path, progress=False)
    frame_syncs = [(i, path, name) for i, (what, path, name) in enumerate(events)
                   if what == "fsync" and (path.parent.name in ("images", "masks", "annotations", "depth")
                                           or path.name in ("annotations", "images"))]
    writing_threads = {name for _, _, name in frame_syncs}
    assert frame_syncs and ("MainThread" not in writing_threads if threads_beside_bpy() else
                            writing_threads == {"MainThread"})
    renders = [i for i, (what, _, name) in enumerate(events) if what == "render"]
    assert len(renders) == 3 and {events[i][2] for i in renders} == {"MainThread"}
    log_syncs = [i for i, (what, path, _) in enumerate(events) if what == "fsync" and path.name == "jobs.jsonl"]
    marker_syncs = [i for i, path, _ in frame_syncs if path.name == "annotations"]
    assert len(marker_syncs) >= 1 and log_syncs[-1] > marker_syncs[-1]
    assert len(frames_of(tmp_path)) == 3 and not list(tmp_path.rglob("*.tmp*"))
    done = [json.loads(line) for line in (tmp_path / "jobs.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in done if r["status"] == "done") == [0, 1, 2]


BESIDE_OPERATORS = """
import sys
from pathlib import Path
import bpy
from synthfarm.addon.core.dataset.background import BackgroundWriter
from synthfarm.addon.core.dataset.native import DatasetWriter
writer = DatasetWriter(Path(sys.argv[1]))
with BackgroundWriter(writer, first=lambda: writer.open("name: x\\n", {"recipe_hash": "abc"}, {"name": "x"})) as w:
    scene = bpy.context.scene
    for job in range(30):
        w.record_job(job, {}, job, "running")  # appended and fsynced by the writer while the operator runs
        with bpy.context.temp_override(scene=scene, view_layer=scene.view_layers[0], collection=scene.collection):
            bpy.ops.mesh.primitive_uv_sphere_add(segments=32, ring_count=16)
print("jobs recorded:", len(writer.jobs()))
"""


def test_dataset_writes_beside_operators_in_a_context_override_do_not_crash_blender(tmp_path):
    """Blender 5.0 (Python 3.11) segfaults when a Python thread runs beside an operator called inside
    bpy.context.temp_override (as the generators and the physics drop call theirs): there the dataset writer has
    no thread of its own. In a process of its own: a crash must fail this test, not end the run."""
    out = subprocess.run([sys.executable, "-c", BESIDE_OPERATORS, str(tmp_path / "ds")], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "jobs recorded: 30" in out.stdout
