"""A process killed (SIGKILL) while its writer thread has a frame's files half-written: no partial file and no
duplicate in the dataset, and what was not durable is rendered again (by the farm, or by the same command)."""
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import yaml

from farm_procs import Farm, check_dataset

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"


def recipe(tmp_path: Path, frames: int) -> Path:
    data = yaml.safe_load(TINY.read_text())
    data["frames"] = frames
    data["sensors"][0]["outputs"] = ["rgb", "depth", "normals", "instance_mask", "semantic_mask"]
    path = tmp_path / f"tiny-{frames}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def kill_when_writing(folder: Path, proc: psutil.Process, timeout=180) -> Path:
    """SIGKILL ``proc`` the moment a temporary file of a frame (not of the dataset's own files) is seen under
    ``folder``; the file seen."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for tmp in folder.rglob(".*.tmp*"):
            if tmp.parent.name in ("images", "depth", "normals", "masks", "semantic", "metadata", "annotations"):
                proc.kill()
                return tmp
        time.sleep(0.0005)
    raise AssertionError("no frame was seen being written")


def test_blender_child_killed_mid_write_leaves_no_partial_frame_and_the_farm_renders_it_again(tmp_path):
    farm = Farm(tmp_path, workers=1)
    try:
        out = tmp_path / "out"
        farm.submit(recipe(tmp_path, 3), 3, out)
        farm.wait(lambda s: s["jobs"]["running"] >= 1, timeout=120)
        (child,) = psutil.Process(farm.workers[0].pid).children()
        seen = kill_when_writing(out / ".staging", child)
        assert ".staging" in seen.parts
        status = farm.wait(lambda s: s["jobs"]["done"] == 3, timeout=240)
        assert status["jobs"]["failed"] == 0
        check_dataset(out, 3, 3)
        for ann in (out / "annotations").glob("*-ann.json"):  # every frame with all of its files
            stem = ann.name.removesuffix("-ann.json")
            assert (out / "normals" / f"{stem}.exr").is_file() and (out / "semantic" / f"{stem}.png").is_file()
    finally:
        farm.stop()


def test_render_killed_mid_write_resumes_without_partial_or_duplicate(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "synthfarm.cli", "render", str(recipe(tmp_path, 1)), "--jobs", "12", "--out", str(out),
           "--in-process"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        while not (out / "jobs.jsonl").is_file() or '"done"' not in (out / "jobs.jsonl").read_text():
            assert time.time() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else "slow"
            time.sleep(0.005)
        kill_when_writing(out, psutil.Process(proc.pid))
        proc.wait(30)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    check_dataset(out, 12, 1)
