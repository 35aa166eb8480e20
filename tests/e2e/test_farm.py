"""The farm as separate processes on loopback: a coordinator, workers with real Blender children,
killed at the worst moments. The dataset must end with every job exactly once and no partial files."""
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from farm_procs import Farm, check_dataset

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def farm(tmp_path):
    farm = Farm(tmp_path)
    yield farm
    farm.stop()


def running_on(status_workers, name):
    return any(w["id"] == name and w["status"] == "busy" for w in status_workers)


def test_worker_killed_mid_job(farm, slow_recipe, tmp_path):
    out = tmp_path / "out"
    farm.submit(slow_recipe, 6, out)
    farm.wait(lambda s: s["jobs"]["running"] >= 1 and running_on(farm.client.workers(), "w0"), timeout=120)
    (child,) = psutil.Process(farm.workers[0].pid).children()
    farm.workers[0].kill()  # SIGKILL the supervisor; its Blender child exits on its own
    status = farm.wait(lambda s: s["jobs"]["done"] == 6, timeout=240)
    assert status["jobs"]["failed"] == 0
    check_dataset(out, 6, 3)
    try:  # mid-render, with nobody left to read its progress: it must not hang as an orphan
        child.wait(timeout=60)
    except psutil.TimeoutExpired:
        child.kill()
        raise AssertionError("the Blender child of a killed worker was still running a minute later") from None


def test_coordinator_killed_and_restarted(farm, slow_recipe, tmp_path):
    out = tmp_path / "out"
    farm.submit(slow_recipe, 6, out)
    farm.wait(lambda s: s["jobs"]["done"] >= 1 and s["jobs"]["running"] >= 1, timeout=120)
    farm.coordinator.kill()
    farm.coordinator.wait()
    time.sleep(1.5)  # the workers notice the silence and start reconnecting
    farm.coordinator = farm.start_coordinator()
    status = farm.wait(lambda s: s["jobs"]["done"] == 6, timeout=240)
    assert status["jobs"]["failed"] == 0
    check_dataset(out, 6, 3)


def test_blender_child_dies_and_is_restarted(farm, slow_recipe, tmp_path):
    out = tmp_path / "out"
    farm.submit(slow_recipe, 4, out)
    farm.wait(lambda s: running_on(farm.client.workers(), "w0"), timeout=120)
    children = psutil.Process(farm.workers[0].pid).children()
    assert len(children) == 1
    children[0].kill()  # as a segfault would
    status = farm.wait(lambda s: s["jobs"]["done"] == 4, timeout=240)
    assert status["jobs"]["failed"] == 0
    new_children = psutil.Process(farm.workers[0].pid).children()
    assert len(new_children) == 1 and new_children[0].pid != children[0].pid
    check_dataset(out, 4, 3)


def test_cancel_frees_the_workers_within_seconds(farm, slow_recipe, tmp_path):
    farm.submit(slow_recipe, 40, tmp_path / "out")
    farm.wait(lambda s: s["jobs"]["running"] == 2, timeout=120)
    farm.client.cancel("batch")
    start = time.time()
    deadline = start + 15
    while time.time() < deadline and any(w["status"] == "busy" for w in farm.client.workers()):
        time.sleep(0.2)
    assert all(w["status"] != "busy" for w in farm.client.workers())
    assert time.time() - start < 10
    status = farm.client.status("batch")
    assert status["status"] == "cancelled" and status["jobs"]["queued"] == 0 and status["jobs"]["running"] == 0


def test_worker_without_a_shared_file_system(tmp_path):
    """A worker in an empty folder of its own gets the recipe and assets by content hash and uploads its
    files; the dataset appears on the coordinator's side."""
    farm = Farm(tmp_path, workers=0)
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    farm.workers.append(farm.start_worker("remote", work_dir=empty / "work", cwd=empty))
    try:
        toybox = ROOT / "assets" / "recipes" / "toybox.yaml"
        submitted = subprocess.run([sys.executable, "-m", "synthfarm.cli", "submit", str(toybox), "--jobs", "2",
                                    "--preview", "--batch-id", "batch", "--out", str(tmp_path / "out"),
                                    "--connect", f"tcp://127.0.0.1:{farm.port + 1}"],
                                   capture_output=True, text=True, timeout=120)
        assert submitted.returncode == 0, submitted.stderr
        assert "inputs: 11 files, 11 uploaded" in submitted.stderr  # recipe, 6 toys + 2 .mtl, bin.obj + .mtl
        status = farm.wait(lambda s: s["jobs"]["done"] == 2, timeout=240)
        assert status["jobs"]["failed"] == 0
        check_dataset(tmp_path / "out", 2, 1)
        assert len(list((empty / "work" / "blobs").iterdir())) >= 10  # the inputs, by hash
        assert not list((empty / "work" / "attempts").iterdir())  # uploaded and cleaned up
        again = subprocess.run([sys.executable, "-m", "synthfarm.cli", "submit", str(toybox), "--jobs", "1",
                                "--preview", "--out", str(tmp_path / "out2"),
                                "--connect", f"tcp://127.0.0.1:{farm.port + 1}"], capture_output=True, text=True)
        assert "11 files, 0 uploaded" in again.stderr  # content-addressed: nothing is sent twice
        fetched = subprocess.run([sys.executable, "-m", "synthfarm.cli", "download", "batch", str(empty / "copy"),
                                  "--connect", f"tcp://127.0.0.1:{farm.port + 1}"], capture_output=True, text=True)
        assert fetched.returncode == 0, fetched.stderr
        check_dataset(empty / "copy", 2, 1)
        originals = sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*.png"))
        assert originals and all((empty / "copy" / rel).read_bytes() == (tmp_path / "out" / rel).read_bytes()
                                 for rel in originals)
        resumed = subprocess.run([sys.executable, "-m", "synthfarm.cli", "download", "batch", str(empty / "copy"),
                                  "--connect", f"tcp://127.0.0.1:{farm.port + 1}"], capture_output=True, text=True)
        assert " 0 files fetched" in resumed.stdout
        umask = os.umask(0)
        os.umask(umask)
        modes = {oct(stat.S_IMODE(f.stat().st_mode)) for root in (tmp_path / "out", empty / "copy")
                 for f in root.rglob("*") if f.is_file() and ".farm" not in f.parts}
        assert modes == {oct(0o666 & ~umask)}  # uploaded, committed and downloaded files follow the umask
    finally:
        farm.stop()
