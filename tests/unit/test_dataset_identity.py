"""A dataset folder has one identity (recipe, tier, resolutions, seed and parameter values or a job list);
anything else arriving there is refused with what differs; one writer at a time."""
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from synthfarm.addon.core.dataset import lock
from synthfarm.addon.core.dataset.identity import batch_identity, differences
from synthfarm.addon.core.dataset.native import DatasetMismatchError, DatasetWriter
from synthfarm.addon.core.recipe import load_recipe

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.yaml"


@pytest.fixture(scope="module")
def recipe():
    return load_recipe(TINY)


def test_identity_of_a_batch(recipe):
    full = batch_identity(recipe, preview=False, seed=3, params={"radius": 2.0})
    assert full == {"recipe_hash": recipe.hash(), "tier": "full", "resolutions": {"cam": [64, 48]}, "seed": 3,
                    "params": {"radius": 2.0}}
    preview = batch_identity(recipe, preview=True, seed=3, params={"radius": 2.0})
    assert differences(full, preview) == ["tier full there, preview now", "sensor cam 64x48 there, 32x24 now"]
    other = batch_identity(recipe, preview=False, seed=5, params={"radius": 3.0})
    assert differences(full, other) == ["seed 3 there, 5 now", "parameter radius 2.0 there, 3.0 now"]
    listed = batch_identity(recipe, preview=False, jobs=[({"radius": 2.0}, 7), ({"radius": 4.0}, 8)])
    assert listed["job_list"]["count"] == 2 and "seed" not in listed
    assert batch_identity(recipe, preview=False, jobs=[({"radius": 2.0}, 7), ({"radius": 4.0}, 8)]) == listed
    assert batch_identity(recipe, preview=False, jobs=[({"radius": 2.0}, 7), ({"radius": 4.5}, 8)]) != listed


def test_resume_refuse_and_replace(tmp_path, recipe):
    out = tmp_path / "ds"
    first = batch_identity(recipe, preview=False, seed=0, params={"radius": 2.0})
    DatasetWriter(out).open("r", first, {"name": "tiny"})
    (out / "images" / "0000000000-0000-cam.png").write_bytes(b"x")
    assert yaml.safe_load((out / "dataset.yaml").read_text())["identity"] == first
    assert DatasetWriter(out).open("r", dict(first), {}) == set()  # the same identity resumes
    other = batch_identity(recipe, preview=True, seed=5, params={"radius": 3.0})
    with pytest.raises(DatasetMismatchError) as refused:
        DatasetWriter(out).open("r", other, {})
    message = str(refused.value)
    for words in ("tier full there, preview now", "sensor cam 64x48 there, 32x24 now", "seed 0 there, 5 now",
                  "parameter radius 2.0 there, 3.0 now", "--out", "--replace"):
        assert words in message
    assert (out / "images" / "0000000000-0000-cam.png").is_file()  # a refusal touches nothing
    (out / "coco").mkdir()
    (out / "notes.txt").write_text("mine")
    assert DatasetWriter(out).open("r", other, {}, replace=True) == set()
    assert yaml.safe_load((out / "dataset.yaml").read_text())["identity"] == other
    assert not (out / "images" / "0000000000-0000-cam.png").exists() and not (out / "coco").exists()
    assert (out / "notes.txt").read_text() == "mine"  # what synthfarm did not write stays


def test_job_list_is_recorded(tmp_path, recipe):
    jobs = [({"radius": 2.0}, 7), ({"radius": 4.0}, 8)]
    DatasetWriter(tmp_path).open("r", batch_identity(recipe, preview=False, jobs=jobs), {}, jobs=jobs)
    lines = [yaml.safe_load(line) for line in (tmp_path / "job_list.jsonl").read_text().splitlines()]
    assert lines == [{"id": 0, "params": {"radius": 2.0}, "seed": 7}, {"id": 1, "params": {"radius": 4.0}, "seed": 8}]
    with pytest.raises(DatasetMismatchError, match="another job list"):
        DatasetWriter(tmp_path).open("r", batch_identity(recipe, preview=False, jobs=jobs[:1]), {}, jobs=jobs[:1])


def test_a_dataset_from_before_identities(tmp_path, recipe):
    identity = batch_identity(recipe, preview=False, seed=1, params={"radius": 2.0})
    (tmp_path / "dataset.yaml").write_text(yaml.safe_dump({"recipe_hash": recipe.hash(), "batch": {
        "seed": 1, "preview": False, "params": {"radius": 2.0}}}))
    assert DatasetWriter(tmp_path).open("r", identity, {}) == set()
    with pytest.raises(DatasetMismatchError, match="seed 1 there, 2 now"):
        DatasetWriter(tmp_path).open("r", {**identity, "seed": 2}, {})
    (tmp_path / "dataset.yaml").write_text(yaml.safe_dump({"recipe_hash": recipe.hash()}))
    with pytest.raises(DatasetMismatchError, match="does not record its seed"):
        DatasetWriter(tmp_path).open("r", identity, {})


HOLD = """
import sys, time
from synthfarm.addon.core.dataset import lock
held = lock.acquire(sys.argv[1])
print("held", flush=True)
time.sleep(600)
"""


def test_one_writer_and_a_crash_leaves_no_lock(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(lock.DatasetBusyError, match="in use: another synthfarm process"):
            lock.acquire(tmp_path)
    finally:
        holder.send_signal(signal.SIGKILL)  # a crash: no clean-up runs
        holder.wait()
    with lock.writing(tmp_path):  # the OS released it with the process
        with lock.writing(tmp_path):  # and it is re-entrant within a process
            pass
    assert DatasetWriter(tmp_path).open("r", {"recipe_hash": "h"}, {}) == set()  # the lock file is no stranger
