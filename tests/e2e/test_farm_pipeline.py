"""The Blender child pipelines its jobs (issue 13): it renders the next job while the previous one's files are made
durable, and sends that one's result only once they are. Real coordinator, SQLite and ZeroMQ on loopback, a real
worker and its real Blender child. The child is started through a wrapper of the test's own (given to the worker as
its "Blender") that holds job 0's dataset writes until the test opens a gate, or fails them once: so that two
attempts are in the child, one rendering and one being made durable, for as long as the test needs."""
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
import zmq

from farm_procs import wait_for
from synthfarm.farm.client import FarmClient
from synthfarm.farm.coordinator import Coordinator
from synthfarm.farm.worker import Worker

# Under Python 3.11 (Blender 5.0) the child makes a job durable before it renders the next (addon/core/threads.py):
# there are never two attempts in it, which is what these tests hold it in
pytestmark = pytest.mark.skipif(sys.version_info < (3, 12), reason="Blender 5.0's child writes a job before it "
                                "renders the next: no two attempts in the child (addon/core/threads.py)")
ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"
CHILD = '''#!{python}
import errno
import sys
import time
from pathlib import Path

from synthfarm.addon.core.dataset.native import DatasetWriter
from synthfarm.addon.engine.runner import Runner

GATE, FAILED, MODE = Path({gate!r}), Path({failed!r}), {mode!r}
write_frames, run_job = DatasetWriter.write_frames, Runner.run_job


def held_writes(self, frames, models=None):
    if any(f.job_id == 0 for f in frames):
        while not GATE.exists():
            time.sleep(0.02)
        if MODE == "fail" and not FAILED.exists():
            FAILED.touch()
            raise OSError(errno.EIO, "test: the disk failed writing job 0's files")
    return write_frames(self, frames, models)


def announced(self, recipe, base_dir, job, *args, **kw):
    print(f"rendering job {{job.id}}", flush=True)
    return run_job(self, recipe, base_dir, job, *args, **kw)


DatasetWriter.write_frames, Runner.run_job = held_writes, announced
from synthfarm.farm.blender_child import main

main(sys.argv[-1])
'''


class Farm:
    """A coordinator and one worker in threads of this process; the worker's child through the wrapper."""

    def __init__(self, tmp_path: Path, mode: str = "hold", **worker_options):
        self.gate = tmp_path / "gate"
        child = tmp_path / "child.py"
        child.write_text(CHILD.format(python=sys.executable, gate=str(self.gate), failed=str(tmp_path / "failed"),
                                      mode=mode))
        child.chmod(0o755)
        self.context = zmq.Context()
        self.coordinator = Coordinator(tmp_path / "state", *["tcp://127.0.0.1:0"] * 4, context=self.context,
                                       heartbeat=0.3, out_root=tmp_path, shared_roots=(TINY.parent,))
        self.worker = Worker(self.coordinator.workers_endpoint, "w0", blender=str(child), context=self.context,
                             work_dir=tmp_path / "work", **worker_options)
        self.threads = [threading.Thread(target=self.coordinator.serve, daemon=True),
                        threading.Thread(target=self.worker.run, daemon=True)]
        for thread in self.threads:
            thread.start()
        self.client = FarmClient(self.coordinator.clients_endpoint, timeout=30, context=self.context)

    def submit(self, batch: str, out: Path, count: int) -> None:
        self.client.submit(batch_id=batch, recipe=TINY.read_text(), recipe_dir=str(TINY.parent), out=str(out),
                           count=count, seed=7)

    @staticmethod
    def until(what, timeout: float = 180.0, why: str = ""):
        return wait_for(what, timeout, why or str(what), every=0.02)

    def two_in_child(self) -> tuple[str, str]:
        """Wait until job 0's files are held while the child renders job 1: (attempt finishing, attempt rendering)."""
        w = self.worker
        self.until(lambda: len(w.finishing) == 1 and w.attempt, why="two attempts in the child")
        time.sleep(0.3)  # still so a moment later: the child waits on job 0's files, not on a round trip
        assert len(w.finishing) == 1 and w.attempt, (w.finishing, w.attempt)
        return next(iter(w.finishing)), w.attempt

    def attempts(self, batch: str, jobs: int) -> list[dict]:
        return [{**a, "job_id": j} for j in range(jobs) for a in self.client.logs(batch, j)]

    def stop(self) -> None:
        self.gate.touch()
        self.worker.stop()
        self.threads[1].join(60)
        self.coordinator.stop_event.set()
        self.threads[0].join(10)
        self.context.destroy(linger=0)


def dataset(out: Path) -> dict[str, bytes]:
    """Every file of a dataset but those that say when and how fast it was made (jobs.jsonl's times, the
    dataset's date, each frame's timings)."""
    files = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        if rel in ("jobs.jsonl", "dataset.yaml"):
            continue
        data = path.read_bytes()
        if rel.startswith("metadata/"):
            meta = json.loads(data)
            meta.pop("timings", None)
            data = json.dumps(meta, sort_keys=True).encode()
        files[rel] = data
    return files


def done_ids(out: Path) -> list[int]:
    return sorted(json.loads(line)["id"] for line in (out / "jobs.jsonl").read_text().splitlines())


@pytest.mark.parametrize("ahead", [1, 0])
def test_a_child_killed_with_two_attempts_fails_both_and_the_dataset_is_the_clean_one(tmp_path, ahead):
    farm = Farm(tmp_path, ahead=ahead)
    try:
        out = tmp_path / "out"
        farm.submit("b", out, 5)
        finishing, rendering = farm.two_in_child()
        status = farm.client.status("b")
        assert status["jobs"]["running"] == 2 and status["held"] == ahead, status  # the coordinator agrees
        assert len(farm.worker.held) == ahead
        os.kill(farm.worker.child.process.pid, signal.SIGKILL)
        farm.gate.touch()  # the jobs' next attempts write freely
        farm.until(lambda: farm.client.status("b")["jobs"]["done"] == 5, why="the batch done")
        attempts = farm.attempts("b", 5)
        failed = {a["id"]: a for a in attempts if a["status"] == "failed"}
        assert set(failed) == {finishing, rendering}, attempts  # both, nothing else
        assert "died" in failed[finishing]["error"] and "its frames were rendered" in failed[finishing]["error"]
        assert "died" in failed[rendering]["error"] and "durable" not in failed[rendering]["error"]
        assert sorted(a["job_id"] for a in attempts if a["status"] == "done") == list(range(5))  # each once
        assert done_ids(out) == list(range(5)) and not list((out / ".staging").glob("*"))
        farm.submit("clean", tmp_path / "clean", 5)  # the same seed again, nothing killed
        farm.until(lambda: farm.client.status("clean")["jobs"]["done"] == 5, why="the clean batch")
        assert dataset(out) == dataset(tmp_path / "clean")
        assert len([f for f in dataset(out) if f.startswith("annotations/")]) == 5
    finally:
        farm.stop()


def test_a_writer_failure_is_reported_on_its_job_not_on_the_one_rendering(tmp_path):
    farm = Farm(tmp_path, mode="fail")
    try:
        out = tmp_path / "out"
        farm.submit("b", out, 3)
        finishing, rendering = farm.two_in_child()
        farm.gate.touch()  # job 0's files fail now, while job 1 renders
        farm.until(lambda: farm.client.status("b")["jobs"]["done"] == 3, why="the batch done")
        attempts = farm.attempts("b", 3)
        failed = [a for a in attempts if a["status"] == "failed"]
        assert [a["id"] for a in failed] == [finishing] and failed[0]["job_id"] == 0, attempts
        assert "the disk failed writing job 0's files" in failed[0]["error"]
        assert [a["status"] for a in attempts if a["id"] == rendering] == ["done"]
        assert done_ids(out) == [0, 1, 2]
        # each attempt's log is its own job's output (until its render was over)
        for a in attempts:
            said = {line for line in a["log"].splitlines() if line.startswith("rendering job")}
            assert said == {f"rendering job {a['job_id']}"}, (a["job_id"], a["log"][-500:])
    finally:
        farm.stop()


def test_cancel_with_two_attempts_in_the_child_and_one_held(tmp_path):
    farm = Farm(tmp_path)
    try:
        out = tmp_path / "out"
        farm.submit("b", out, 6)
        finishing, rendering = farm.two_in_child()
        assert len(farm.worker.held) == 1
        farm.client.cancel("b")
        farm.until(lambda: not farm.worker.finishing and not farm.worker.attempt and not farm.worker.held,
                   why="the worker empty")
        time.sleep(2)  # a result of any of them would come within this
        status = farm.client.status("b")
        assert status["jobs"]["running"] == 0 and status["held"] == 0
        cancelled = [a for a in farm.attempts("b", 6) if a["status"] == "cancelled"]
        assert {finishing, rendering} <= {a["id"] for a in cancelled} and len(cancelled) == 3, cancelled
        assert farm.client.status()["dropped"].get("stale_result", 0) == 0  # none reported back
        assert not list((out / "annotations").glob("*"))  # nothing of the cancelled jobs landed
        farm.gate.touch()
        farm.submit("after", tmp_path / "after", 2)  # the worker renders on
        farm.until(lambda: farm.client.status("after")["jobs"]["done"] == 2, why="the next batch")
    finally:
        farm.stop()


def test_a_recycled_child_is_restarted_only_once_its_last_files_are_durable(tmp_path):
    farm = Farm(tmp_path, max_jobs=1)
    try:
        out = tmp_path / "out"
        farm.submit("b", out, 3)
        w = farm.worker
        farm.until(lambda: len(w.finishing) == 1, why="job 0 rendered")
        time.sleep(1.0)
        # due for a recycle after one job: no next task goes to it, and it is not restarted while it writes
        assert w.recycle and w.attempt is None and w.held and w.restarts == 0 and w.child.alive()
        farm.gate.touch()
        farm.until(lambda: farm.client.status("b")["jobs"]["done"] == 3, why="the batch done")
        assert w.restarts >= 2 and done_ids(out) == [0, 1, 2]
        assert not [a for a in farm.attempts("b", 3) if a["status"] != "done"]
    finally:
        farm.stop()
