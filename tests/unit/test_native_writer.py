"""The native dataset writer: layout, atomic files, resume, and completeness."""
import json
import os
import stat

import numpy as np
import pytest
from PIL import Image

from synthfarm.addon.core.dataset.native import (DatasetError, DatasetMismatchError, DatasetWriter, atomic_path,
                                                 read_png)
from synthfarm.addon.core.exr import read_depth, read_exr, read_normals


def frame(writer, job, tmp_path, sensor="cam"):
    png = tmp_path / f"render-{job}.png"
    Image.new("RGB", (8, 6), (10, 20, 30)).save(png)
    mask = np.arange(48, dtype=np.uint16).reshape(6, 8) * 1000
    writer.write_frame(job, 0, sensor, image_png=png, depth=np.full((6, 8), 2.5, np.float32),
                       normals=np.dstack([np.ones((6, 8)), np.zeros((6, 8)), np.zeros((6, 8))]),
                       instance_mask=mask, semantic_mask=mask // 1000, annotation={"objects": []},
                       metadata={"seed": job})
    return mask


def test_layout_and_round_trips(tmp_path):
    writer = DatasetWriter(tmp_path / "ds")
    assert writer.open("name: x\n", {"recipe_hash": "abc"}, {"name": "x"}) == set()
    mask = frame(writer, 3, tmp_path)
    paths = writer.frame_paths(3, 0, "cam")
    assert paths["image"].name == "0000000003-0000-cam.png"
    assert paths["annotation"].name == "0000000003-0000-cam-ann.json"
    assert np.array_equal(read_png(paths["mask"]), mask) and read_png(paths["mask"]).dtype == np.uint16
    assert read_depth(paths["depth"])[0, 0] == 2.5 and read_normals(paths["normals"])[0, 0].tolist() == [1, 0, 0]
    assert set(read_exr(paths["depth"])) == {"Y"} and set(read_exr(paths["normals"])) == {"R", "G", "B"}
    assert Image.open(paths["image"]).size == (8, 6)
    assert (tmp_path / "ds" / "recipe.yaml").read_text() == "name: x\n"
    writer.record_job(3, {"n": 1}, 42, "done", stems=["0000000003-0000-cam"])
    assert writer.completed_jobs() == {3}
    writer.finalize({"jobs": 1, "jobs_requested": 2})
    assert writer.info()["complete"] is False and writer.info()["counts"]["frames"] == 1


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "a.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_resume_mismatch_and_foreign_folders(tmp_path):
    writer = DatasetWriter(tmp_path / "ds")
    writer.open("r", {"recipe_hash": "h1"}, {})
    frame(writer, 0, tmp_path)
    writer.record_job(0, {}, 1, "done", stems=["0000000000-0000-cam"])
    writer.record_job(1, {}, 2, "running")
    (tmp_path / "ds" / "images" / ".x.png.123.tmp.png").write_text("leftover")
    assert DatasetWriter(tmp_path / "ds").open("r", {"recipe_hash": "h1"}, {}) == {0}
    assert not list((tmp_path / "ds").rglob("*.tmp*"))
    with pytest.raises(DatasetMismatchError, match=r"another recipe \(hash h1 there, h2 now\)"):
        DatasetWriter(tmp_path / "ds").open("r", {"recipe_hash": "h2"}, {})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        DatasetWriter(tmp_path / "other").open("r", {"recipe_hash": "h1"}, {})


def test_torn_jobs_line_and_missing_frame(tmp_path):
    writer = DatasetWriter(tmp_path)
    writer.open("r", {"recipe_hash": "h"}, {})
    frame(writer, 0, tmp_path / "..")
    writer.record_job(0, {}, 1, "done", stems=["0000000000-0000-cam"])
    writer.record_job(1, {}, 2, "done", stems=["0000000001-0000-cam"])  # its annotation never landed
    with open(tmp_path / "jobs.jsonl", "a") as handle:
        handle.write('{"id": 2, "stat')
    assert writer.completed_jobs() == {0}
    assert json.loads((tmp_path / "jobs.jsonl").read_text().splitlines()[0])["seed"] == 1


def test_temporary_name_keeps_the_extension_and_lands_atomically(tmp_path):
    target = tmp_path / "0000000003-0000-cam.png"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".0000000003-0000-cam.png.")
        assert tmp.name.endswith(".tmp.png") and not target.exists()
        tmp.write_bytes(b"png")
    assert target.read_bytes() == b"png" and [p.name for p in tmp_path.iterdir()] == [target.name]


def test_job_completeness_and_redone_frames(tmp_path):
    writer = DatasetWriter(tmp_path / "ds")
    writer.open("r", {"recipe_hash": "h"}, {})
    for sensor in ("left", "right"):
        writer.write_frame(5, 0, sensor, annotation={"v": 1}, metadata={})
    assert not writer.job_complete(5, 2, ["left", "right"])  # frame 1 missing
    writer.write_frame(5, 1, "left", annotation={"v": 1}, metadata={})
    writer.write_frame(5, 1, "right", annotation={"v": 1}, metadata={})
    assert writer.job_complete(5, 2, ["left", "right"])
    writer.write_frame(5, 1, "right", annotation={"v": 2}, metadata={})  # a re-done frame overwrites the stale one
    assert json.loads(writer.frame_paths(5, 1, "right")["annotation"].read_text()) == {"v": 2}


def test_masks_are_16_bit_and_out_of_range_ids_are_refused(tmp_path):
    writer = DatasetWriter(tmp_path / "ds")
    writer.open("r", {"recipe_hash": "h"}, {})
    mask = np.array([[0, 1, 65535], [300, 4096, 2]], dtype=np.int32)
    writer.write_frame(1, 0, "cam", instance_mask=mask, annotation={}, metadata={})
    back = read_png(writer.frame_paths(1, 0, "cam")["mask"])
    assert back.dtype == np.uint16 and np.array_equal(back, mask)
    with pytest.raises(ValueError, match="0..65535"):
        writer.write_frame(2, 0, "cam", instance_mask=mask + 1, annotation={}, metadata={})
    assert not any(p.exists() for p in writer.frame_paths(2, 0, "cam").values())


def test_torn_line_does_not_swallow_the_next_record(tmp_path):
    writer = DatasetWriter(tmp_path)
    writer.open("r", {"recipe_hash": "h"}, {})
    writer.record_job(0, {}, 1, "running")
    with open(tmp_path / "jobs.jsonl", "a") as handle:
        handle.write('{"id": 0, "status": "do')  # the process died here
    writer.record_job(0, {}, 1, "done", note="later")
    assert writer.jobs()[0]["status"] == "done" and writer.jobs()[0]["note"] == "later"


def test_interrupted_open_corrupt_info_and_finalize(tmp_path):
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)  # a crash after the folders and recipe, before dataset.yaml
    (root / "recipe.yaml").write_text("old")
    (root / ".dataset.yaml.x.tmp.yaml").write_text("half")
    writer = DatasetWriter(root)
    assert writer.open("new", {"recipe_hash": "h"}, {"name": "n"}) == set()
    assert (root / "recipe.yaml").read_text() == "new" and not list(root.glob(".*"))
    writer.finalize({"jobs": 3, "jobs_requested": 4})
    assert writer.info()["complete"] is False and writer.info()["recipe_hash"] == "h"
    (root / "dataset.yaml").write_text("[unclosed")
    with pytest.raises(DatasetError, match="not valid YAML"):
        DatasetWriter(root).open("new", {"recipe_hash": "h"}, {})


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_files_follow_the_umask(tmp_path, umask, mode):
    """Every file of a dataset (written atomically) gets the mode any new file gets under the umask."""
    previous = os.umask(umask)
    try:
        writer = DatasetWriter(tmp_path / "ds")
        writer.open("name: x\n", {"recipe_hash": "abc"}, {"name": "x"})
        frame(writer, 0, tmp_path)
        writer.record_job(0, {}, 1, "done", stems=["0000000000-0000-cam"])
        writer.finalize({"jobs": 1, "jobs_requested": 1})
    finally:
        os.umask(previous)
    files = [p for p in (tmp_path / "ds").rglob("*") if p.is_file()]
    assert len(files) >= 9
    assert {p.relative_to(tmp_path): oct(stat.S_IMODE(p.stat().st_mode)) for p in files
            if stat.S_IMODE(p.stat().st_mode) != mode} == {}
