"""Frames are made durable together: every file fsynced before its rename, every folder fsynced once per group
after its renames and before any annotation (the commit marker) lands, the annotations' folder after them; the
background writer does this on its own thread, in order, and records a job only behind its durable frames."""
from pathlib import Path

import disk_events
import numpy as np
import pytest

from synthfarm.addon.core.dataset.background import BackgroundWriter
from synthfarm.addon.core.dataset.native import DatasetWriter, FrameFiles
from synthfarm.addon.core.threads import threads_beside_bpy


@pytest.fixture()
def events(monkeypatch):
    """What reaches the disk, in order, from which thread: (what, path, thread name). The real calls are made."""
    return disk_events.record(monkeypatch)


def frame(job: int, k: int = 0, ids=None) -> FrameFiles:
    ids = np.arange(48, dtype=np.uint16).reshape(6, 8) if ids is None else ids
    return FrameFiles(job, k, "cam", image_png=b"\x89PNG\r\n\x1a\n", depth=np.full((6, 8), 2.5, np.float32),
                      normals=np.dstack([np.ones((6, 8)), np.zeros((6, 8)), np.zeros((6, 8))]), instance_mask=ids,
                      semantic_mask=ids // 10, annotation={"objects": [], "job": job}, metadata={"seed": job})


def dataset(tmp_path) -> DatasetWriter:
    writer = DatasetWriter(tmp_path / "ds")
    writer.open("name: x\n", {"recipe_hash": "abc"}, {"name": "x"})
    return writer


def check_group(events, root: Path, frames: int):
    """The order durability needs, with one fsync per folder for the whole group."""
    folders = disk_events.check_durable_commit(events, root)
    renames = [path for what, path, *_ in events if what == "rename"]
    assert len(renames) == frames * 7 + 1  # annotation, image, depth, normals, masks, semantic, meta; model
    assert sorted(f.name for f in folders) == sorted(  # models/ is new: its name made durable in the dataset's
        ["images", "depth", "normals", "masks", "semantic", "metadata", "models", "annotations", root.name])
    assert set(folders.values()) == {1}  # once each


def test_a_group_of_frames_is_durable_in_order_with_one_fsync_per_folder(tmp_path, events):
    writer = dataset(tmp_path)
    events.clear()
    writer.write_frames([frame(0), frame(0, 1), frame(1)], {"m1": (np.eye(3), np.array([[0, 1, 2]]))})
    check_group(events, tmp_path / "ds", 3)
    assert writer.fsyncs == len([e for e in events if e[0] == "fsync"]) == 3 * 7 + 1 + 9
    # encoded and fsynced at once on the encoder threads, not one after another by the caller; by the caller in a
    # Blender 5.0 process (core/threads.py: Python 3.11 with bpy loaded, as when this runs with the Blender tests)
    encoders = {name.startswith("synthfarm-encode") for what, _, name, _ in events if what == "fsync"}
    assert encoders == {threads_beside_bpy()}
    assert not list((tmp_path / "ds").rglob("*.tmp*"))


def test_a_redone_frame_loses_its_old_annotation_durably_before_anything_is_rewritten(tmp_path, events):
    writer = dataset(tmp_path)
    writer.write_frame(**vars(frame(0)))
    events.clear()
    writer.write_frames([frame(0)])
    first_rename = min(i for i, e in enumerate(events) if e[0] == "rename")
    assert events[0][:2] == ("fsync", tmp_path / "ds" / "annotations") and first_rename > 0


def test_the_background_writer_writes_on_its_own_thread_and_records_a_job_behind_its_durable_frames(
        tmp_path, events):
    writer = dataset(tmp_path)
    events.clear()
    with BackgroundWriter(writer, threaded=True) as frames:
        frames.record_job(0, {}, 1, "running")
        frames.write_model("m1", np.eye(3), np.array([[0, 1, 2]]))
        frames.write_frame(**vars(frame(0)))
        frames.record_job(0, {}, 1, "done", stems=["0000000000-0000-cam"])
    assert events and "MainThread" not in {name for _, _, name, _ in events}  # nothing on the render thread
    log = tmp_path / "ds" / "jobs.jsonl"
    log_syncs = [i for i, (what, path, *_) in enumerate(events) if what == "fsync" and path == log]
    marker = max(i for i, (what, path, *_) in enumerate(events) if what == "fsync" and path.name == "annotations")
    assert log_syncs and log_syncs[-1] > marker  # "done" reached the disk after the frame was durable
    assert frames.durable_frames == 1 and writer.completed_jobs() == {0}


THREADED = pytest.mark.parametrize("threaded", [True, False], ids=["threaded", "inline"])


def test_without_a_thread_every_write_is_durable_when_its_call_returns_in_the_same_order(tmp_path, events):
    writer = DatasetWriter(tmp_path / "ds")
    with BackgroundWriter(writer, first=opening(writer), threaded=False) as frames:
        assert writer.info()["name"] == "x"  # opened by the constructor
        frames.record_job(0, {}, 1, "running")
        frames.write_frame(**vars(frame(0)))
        assert frames.durable_frames == 1 and writer.frame_paths(0, 0, "cam")["annotation"].is_file()
        frames.record_job(0, {}, 1, "done", stems=["0000000000-0000-cam"])
        assert writer.completed_jobs() == {0}
    assert {e.thread for e in events if not e.thread.startswith("synthfarm-encode")} == {"MainThread"}
    log = tmp_path / "ds" / "jobs.jsonl"
    log_syncs = [i for i, e in enumerate(events) if e.what == "fsync" and e.path == log]
    marker = max(i for i, e in enumerate(events) if e.what == "fsync" and e.path.name == "annotations")
    assert len(log_syncs) == 2 and log_syncs[0] < marker < log_syncs[1]  # "running", the frame, "done"
    with pytest.raises(RuntimeError, match="closed"):
        frames.record_job(1, {}, 2, "running")


@THREADED
def test_after_a_failed_frame_nothing_more_is_written_and_the_error_reaches_the_render_thread(tmp_path, threaded):
    writer = dataset(tmp_path)
    frames = BackgroundWriter(writer, threaded=threaded)
    with pytest.raises(ValueError, match="outside 0..65535"):  # at once without a thread, or on the next call
        frames.write_frame(**vars(frame(0, ids=np.full((6, 8), 70000, np.int64))))  # ids a 16-bit PNG cannot hold
        frames.record_job(0, {}, 1, "done", stems=["0000000000-0000-cam"])
        frames.drain()
    with pytest.raises(ValueError):
        frames.write_frame(**vars(frame(1)))
    with pytest.raises(ValueError):
        frames.close()
    assert writer.jobs() == {} and not list((tmp_path / "ds" / "annotations").iterdir())
    assert not list((tmp_path / "ds").rglob("*.tmp*"))


@THREADED
def test_a_frame_written_in_two_parts_counts_only_once_its_annotation_is_durable(tmp_path, threaded):
    writer = dataset(tmp_path)
    pixels, labels = frame(0), frame(0)
    with BackgroundWriter(writer, threaded=threaded) as frames:
        frames.write_frame(0, 0, "cam", image_png=pixels.image_png, depth=pixels.depth, normals=pixels.normals,
                           instance_mask=pixels.instance_mask)
        frames.drain()
        paths = writer.frame_paths(0, 0, "cam")
        assert paths["image"].is_file() and paths["depth"].is_file() and not paths["annotation"].exists()
        assert frames.durable_frames == 0 and not paths["metadata"].exists()
        frames.write_frame(0, 0, "cam", semantic_mask=labels.semantic_mask, annotation=labels.annotation,
                           metadata=labels.metadata)
    assert frames.durable_frames == 1 and paths["annotation"].is_file() and paths["semantic"].is_file()


def opening(writer: DatasetWriter):
    return lambda: writer.open("name: x\n", {"recipe_hash": "abc"}, {"name": "x"})


def test_the_background_writer_opens_the_dataset_on_its_own_thread_before_anything_is_written(tmp_path, events):
    writer = DatasetWriter(tmp_path / "ds")
    with BackgroundWriter(writer, first=opening(writer), threaded=True) as frames:
        frames.write_frame(**vars(frame(0)))
    assert events and "MainThread" not in {e.thread for e in events}  # not on the render thread
    recipe = [i for i, e in enumerate(events) if e.path == tmp_path / "ds" / "recipe.yaml"]
    frame_files = [i for i, e in enumerate(events) if "images" in e.path.parts]
    assert recipe and frame_files and max(recipe) < min(frame_files)  # the dataset first
    assert frames.durable_frames == 1 and writer.info()["name"] == "x"


@THREADED
def test_a_dataset_that_cannot_be_opened_fails_the_writer_and_writes_nothing(tmp_path, threaded):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "someone-elses.txt").write_text("kept")
    writer = DatasetWriter(tmp_path / "ds")
    frames = BackgroundWriter(writer, first=opening(writer), threaded=threaded)
    with pytest.raises(Exception, match="holds no synthfarm dataset"):
        frames.write_frame(**vars(frame(0)))
        frames.drain()
    with pytest.raises(Exception, match="holds no synthfarm dataset"):
        frames.close()
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["someone-elses.txt"]
