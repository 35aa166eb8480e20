"""The farm as separate processes on loopback (coordinator and workers through the `synthfarm` command),
shared by the end-to-end tests."""
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from synthfarm.farm.client import FarmClient


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
    return subprocess.Popen([sys.executable, "-m", "synthfarm.cli", *map(str, args)], **kw)


class Farm:
    def __init__(self, tmp: Path, workers=2):
        self.tmp, self.port = tmp, free_ports()
        self.coordinator = self.start_coordinator()
        self.workers = [self.start_worker(f"w{i}") for i in range(workers)]
        self.client = FarmClient(f"tcp://127.0.0.1:{self.port + 1}", timeout=10)

    def start_coordinator(self):
        return cli("coordinator", "--port", self.port, "--data", self.tmp / "state", "--heartbeat", 0.3,
                   "--lost-after", 3, stdout=subprocess.DEVNULL)

    def start_worker(self, name, work_dir: Path | None = None, cwd: Path | None = None):
        """A worker process; with ``work_dir`` (and ``cwd``) it is like one on another machine: it gets the
        inputs by content hash into a cache of its own."""
        extra = ("--work-dir", work_dir) if work_dir else ()
        return cli("worker", "--connect", f"tcp://127.0.0.1:{self.port}", "--name", name, *extra, cwd=cwd,
                   stdout=subprocess.DEVNULL)

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
