"""The farm as separate processes on loopback: a coordinator, workers with real Blender children,
killed at the worst moments. The dataset must end with every job exactly once and no partial files."""
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from synthfarm.farm.client import FarmClient

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"


def free_ports(n=4):
    for start in range(20000, 60000, 7):
        socks = []
        try:
            for port in range(start, start + n):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                socks.append(s)
            return start
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free ports")


def cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "synthfarm.farm.cli", *map(str, args)], **kw)


class Farm:
    def __init__(self, tmp: Path, workers=2):
        self.tmp, self.port = tmp, free_ports()
        self.coordinator = self.start_coordinator()
        self.workers = [self.start_worker(f"w{i}") for i in range(workers)]
        self.client = FarmClient(f"tcp://127.0.0.1:{self.port + 1}", timeout=10)

    def start_coordinator(self):
        return cli("coordinator", "--port", self.port, "--data", self.tmp / "state", "--heartbeat", 0.3,
                   "--lost-after", 3, stdout=subprocess.DEVNULL)

    def start_worker(self, name):
        return cli("worker", "--connect", f"tcp://127.0.0.1:{self.port}", "--name", name, stdout=subprocess.DEVNULL)

    def submit(self, recipe: Path, jobs: int, out: Path) -> str:
        data = self.client.submit(batch_id="batch", recipe=recipe.read_text(), recipe_dir=str(recipe.parent),
                                  out=str(out), count=jobs)
        return data["id"]

    def wait(self, predicate, timeout=180):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                status = self.client.status("batch")
                if predicate(status):
                    return status
            except Exception:  # the coordinator may be down on purpose
                pass
            time.sleep(0.2)
        raise AssertionError(f"timed out; last status {self.client.status('batch')}")

    def stop(self):
        for proc in [*self.workers, self.coordinator]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.workers, self.coordinator]:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture()
def slow_recipe(tmp_path):
    """Jobs of about a second each (three frames), so that there is time to kill things mid-job."""
    data = yaml.safe_load(TINY.read_text())
    data["frames"] = 3
    data["sensors"][0].update(resolution=[160, 120], samples=8)
    path = TINY.parent / f".farm-test-{tmp_path.name}.yaml"  # beside tiny.yaml: same relative paths
    path.write_text(yaml.safe_dump(data))
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture()
def farm(tmp_path):
    farm = Farm(tmp_path)
    yield farm
    farm.stop()


def check_dataset(out: Path, jobs: int, frames: int):
    annotations = sorted((out / "annotations").glob("*-ann.json"))
    assert len(annotations) == jobs * frames
    assert {int(p.name[:10]) for p in annotations} == set(range(jobs))
    assert not list(out.rglob("*.tmp*")) and not list((out / ".staging").glob("*"))
    for ann in annotations:
        stem = ann.name.removesuffix("-ann.json")
        for sub, suffix in (("images", ".png"), ("masks", ".png"), ("depth", ".exr"), ("metadata", "-meta.json")):
            assert (out / sub / f"{stem}{suffix}").is_file()
    done = [json.loads(line) for line in (out / "jobs.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in done if r["status"] == "done") == list(range(jobs))  # once each


def running_on(status_workers, name):
    return any(w["id"] == name and w["status"] == "busy" for w in status_workers)


def test_worker_killed_mid_job(farm, slow_recipe, tmp_path):
    out = tmp_path / "out"
    farm.submit(slow_recipe, 6, out)
    farm.wait(lambda s: s["jobs"]["running"] >= 1 and running_on(farm.client.workers(), "w0"), timeout=120)
    farm.workers[0].kill()  # SIGKILL the supervisor; its Blender child exits on its own
    status = farm.wait(lambda s: s["jobs"]["done"] == 6, timeout=240)
    assert status["jobs"]["failed"] == 0
    check_dataset(out, 6, 3)


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
    remote = cli("worker", "--connect", f"tcp://127.0.0.1:{farm.port}", "--name", "remote", "--work-dir",
                 empty / "work", cwd=empty, stdout=subprocess.DEVNULL)
    farm.workers.append(remote)
    try:
        toybox = ROOT / "assets" / "recipes" / "toybox.yaml"
        submitted = subprocess.run([sys.executable, "-m", "synthfarm.farm.cli", "submit", str(toybox), "--jobs", "2",
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
        again = subprocess.run([sys.executable, "-m", "synthfarm.farm.cli", "submit", str(toybox), "--jobs", "1",
                                "--preview", "--out", str(tmp_path / "out2"),
                                "--connect", f"tcp://127.0.0.1:{farm.port + 1}"], capture_output=True, text=True)
        assert "11 files, 0 uploaded" in again.stderr  # content-addressed: nothing is sent twice
        fetched = subprocess.run([sys.executable, "-m", "synthfarm.farm.cli", "download", "batch", str(empty / "copy"),
                                  "--connect", f"tcp://127.0.0.1:{farm.port + 1}"], capture_output=True, text=True)
        assert fetched.returncode == 0, fetched.stderr
        check_dataset(empty / "copy", 2, 1)
        originals = sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*.png"))
        assert originals and all((empty / "copy" / rel).read_bytes() == (tmp_path / "out" / rel).read_bytes()
                                 for rel in originals)
        resumed = subprocess.run([sys.executable, "-m", "synthfarm.farm.cli", "download", "batch", str(empty / "copy"),
                                  "--connect", f"tcp://127.0.0.1:{farm.port + 1}"], capture_output=True, text=True)
        assert " 0 files fetched" in resumed.stdout
    finally:
        farm.stop()
