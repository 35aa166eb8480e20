"""An attempt's staging folder, cheaply: its writer makes only the folders it writes into, the landing removes it
by the names its vetting listed (no walk, a link never followed), and the dataset folders a group writes into are
looked at right before its renames. Real files, a real coordinator (real SQLite file, real ZeroMQ)."""
import os
import shutil
import sqlite3
from pathlib import Path

import farm_procs
import numpy as np
import pytest

from synthfarm.addon.core.dataset.native import DatasetWriter, FrameFiles
from synthfarm.farm.landing import remove_landed
from synthfarm.farm.paths import vet_staging

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.yaml"
STEM = "0000000007-0000-cam"


def staged_attempt(staging: Path) -> None:
    """What a Blender child leaves in its staging folder for job 7: its dataset.yaml and recipe.yaml, a frame's
    image, instance mask and annotation."""
    writer = DatasetWriter(staging)
    writer.open(TINY.read_text(), {"recipe_hash": "test"}, {"name": "test", "attempt": "a1"})
    writer.write_frames([FrameFiles(7, 0, "cam", image_png=b"\x89PNG\r\n\x1a\n", annotation={"objects": []},
                                    instance_mask=np.ones((6, 8), np.uint16))])


def test_an_attempts_dataset_makes_only_the_folders_it_writes_into(tmp_path):
    staged_attempt(tmp_path / "staging")
    assert sorted(p.name for p in (tmp_path / "staging").iterdir()) == [
        "annotations", "dataset.yaml", "images", "masks", "recipe.yaml"]
    dataset = DatasetWriter(tmp_path / "dataset")  # a dataset of its own still has every folder from the start
    dataset.open(TINY.read_text(), {"recipe_hash": "test"}, {"name": "test"})
    assert {"images", "depth", "normals", "masks", "semantic", "metadata", "annotations"} <= {
        p.name for p in (tmp_path / "dataset").iterdir()}


def landed_staging(tmp_path: Path) -> tuple[Path, dict]:
    staging = tmp_path / "out" / ".staging" / "a1"
    staged_attempt(staging)
    refused, staged = vet_staging(str(staging), 7, 1)
    assert refused is None
    assert DatasetWriter(tmp_path / "out").commit_stagings([(str(staging), staged)]) == [[STEM]]
    return staging, staged


def test_a_landed_staging_folder_is_removed_by_name_without_a_walk(tmp_path, monkeypatch):
    staging, staged = landed_staging(tmp_path)
    assert staged[""] == {"dataset.yaml", "recipe.yaml"} and staged["images"] == {f"{STEM}.png"}

    def no_walk(*args, **kwargs):
        raise AssertionError("the staging folder was walked")

    monkeypatch.setattr(shutil, "rmtree", no_walk)
    remove_landed(str(staging), staged)
    assert not os.path.lexists(staging)
    assert (tmp_path / "out" / "annotations" / f"{STEM}-ann.json").is_file()
    assert (tmp_path / "out" / "masks" / f"{STEM}.png").is_file()


def test_what_the_commit_left_or_was_added_later_is_removed_as_a_whole(tmp_path):
    staging, staged = landed_staging(tmp_path)
    (staging / "images" / "late.png").write_bytes(b"written after the vetting")
    (staging / "extra").mkdir()
    remove_landed(str(staging), staged)
    assert not os.path.lexists(staging)


@pytest.mark.parametrize("replaced", ["", "images"])
def test_removing_a_staging_folder_never_follows_a_link_put_in_its_place(tmp_path, replaced):
    staging, staged = landed_staging(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "images").mkdir(parents=True)
    (elsewhere / "dataset.yaml").write_text("someone else's")
    target = staging / replaced if replaced else staging
    shutil.rmtree(target)
    target.symlink_to(elsewhere)
    remove_landed(str(staging), staged)
    assert (elsewhere / "dataset.yaml").read_text() == "someone else's" and (elsewhere / "images").is_dir()
    assert not os.path.lexists(staging)


def test_a_dataset_folder_that_becomes_a_link_after_the_done_is_not_written_through(inproc_farm, tmp_path):
    """The dataset folders a group writes into are looked at right before its renames (once per group), not only
    when each DONE arrives: one replaced by a link in between is refused, the attempt failed with the reason."""
    coord, client, context = inproc_farm
    out = tmp_path / "out"
    client.submit(batch_id="b", recipe=TINY.read_text(), recipe_dir=str(TINY.parent), out=str(out), count=1)
    w = farm_procs.StandIn(coord.workers_endpoint, "w", context)
    task = w.take()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    land = coord.store.land

    def replaced_then_land(attempt):  # after the DONE's vetting, before the cycle lands its files
        (out / "images").rename(tmp_path / "images-moved")
        (out / "images").symlink_to(elsewhere)
        return land(attempt)

    coord.store.land = replaced_then_land
    w.render(task)
    assert farm_procs.wait_for(lambda: client.status("b")["jobs"]["running"] == 0, 30, "the attempt's end")
    assert list(elsewhere.iterdir()) == []
    assert not (out / "annotations" / f"{task.job_id:010d}-0000-cam-ann.json").exists()
    assert client.status("b")["jobs"]["done"] == 0
    db = sqlite3.connect(f"file:{coord.store.path}?mode=ro", uri=True)
    errors = [error for (error,) in db.execute("SELECT error FROM attempts") if error]
    db.close()
    assert any("is a link" in error for error in errors), errors
    w.close()


@pytest.mark.parametrize("rel, refused", [
    ("images/0000000007-0000-cam.png", None),
    ("models/parts/x.ply", None),  # not a frame folder: anything (never committed from a folder in it)
    ("report.txt", None),
    ("images/0000000008-0000-cam.png", "is not a file of job 7's frames"),  # another job's
    ("images/0000000007-0001-cam.png", "is not a file of job 7's frames"),  # a frame the job does not have
    ("images/sub/0000000007-0000-cam.png", "is not a file of job 7's frames"),  # a folder in a frame folder
])
def test_the_vetting_takes_only_regular_files_of_the_jobs_frames(tmp_path, rel, refused):
    staging = tmp_path / "staging"
    staged_attempt(staging)
    (staging / rel).parent.mkdir(parents=True, exist_ok=True)
    (staging / rel).write_bytes(b"x")
    why, staged = vet_staging(str(staging), 7, 1)
    assert (why is None) if refused is None else (refused in why and rel in why), why
    if refused is None:
        folder, _, name = rel.rpartition("/")
        assert name in staged[folder]


def test_the_vetting_refuses_a_link(tmp_path):
    staging = tmp_path / "staging"
    staged_attempt(staging)
    (staging / "masks" / "0000000007-0000-cam.png").unlink()
    (staging / "masks" / "0000000007-0000-cam.png").symlink_to(tmp_path)
    why, _ = vet_staging(str(staging), 7, 1)
    assert "masks/0000000007-0000-cam.png is a link or a special file" in why
