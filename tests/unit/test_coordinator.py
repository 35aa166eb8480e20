"""The coordinator over real ZeroMQ sockets on loopback and a real SQLite file, with stand-in workers
that speak the protocol (no Blender): scheduling, failures, blocklists, retries, cancel, garbage."""
import os
import threading
import time
from pathlib import Path

import disk_events
import farm_procs
import pytest
import yaml
import zmq

from synthfarm.farm import protocol as p
from synthfarm.farm.client import FarmClient, FarmError
from synthfarm.farm.coordinator import Coordinator

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.yaml"


class Farm:
    def __init__(self, data: Path, **kw):
        self.context = zmq.Context()
        self.coord = Coordinator(data, "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0",
                                       "tcp://127.0.0.1:0",
                                 context=self.context, heartbeat=0.2,
                                 **{"out_root": data.parent, "shared_roots": (TINY.parent,), **kw})
        self.thread = threading.Thread(target=self.coord.serve, daemon=True)
        self.thread.start()
        self.client = FarmClient(self.coord.clients_endpoint, timeout=5, context=self.context)

    def submit(self, out: Path, count=3, batch_id="b1", priority=50):
        return self.client.submit(batch_id=batch_id, recipe=TINY.read_text(), recipe_dir=str(TINY.parent),
                                  out=str(out), count=count, priority=priority)

    def stop(self):
        self.coord.stop_event.set()
        self.thread.join(10)
        self.context.destroy(linger=0)  # also closes the stand-ins' sockets


def StandIn(farm: Farm, name: str) -> farm_procs.StandIn:
    """A worker that answers tasks itself."""
    return farm_procs.StandIn(farm.coord.workers_endpoint, name, farm.context)


@pytest.fixture()
def farm(tmp_path):
    farm = Farm(tmp_path / "state")
    yield farm
    farm.stop()


def wait_for(predicate, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_jobs_go_out_once_and_complete(farm, tmp_path):
    assert farm.submit(tmp_path / "out", count=3)["new"]
    assert not farm.submit(tmp_path / "out", count=3)["new"]  # the same batch id is one batch
    a, b = StandIn(farm, "a"), StandIn(farm, "b")
    tasks = [a.take(), b.take()]
    assert [t.job_id for t in tasks] == [0, 1]
    for worker, task in ((a, tasks[0]), (b, tasks[1])):
        worker.render(task)
    task = a.take()
    assert task.job_id == 2 and task.seed != tasks[0].seed and task.staging.endswith(task.attempt_id)
    a.render(task)
    assert wait_for(lambda: farm.client.status("b1")["jobs"]["done"] == 3)
    assert a.take() is None  # NO_TASK


def test_a_committed_frame_is_durable_before_its_job_is_recorded_done(farm, tmp_path, monkeypatch):
    """The coordinator moves an attempt's staged frames into the dataset as the writer writes them: each file's
    bytes fsynced before it gets its name (an upload never was), each folder fsynced once after its renames, the
    annotations last, their folder fsynced before the job's "done" line reaches jobs.jsonl."""
    out = tmp_path / "out"
    farm.submit(out, count=1)
    w = StandIn(farm, "w")
    task = w.take()
    farm_procs.stage_frames(task)
    events = disk_events.record(monkeypatch)
    w.finish(task, frames=task.frames)
    assert wait_for(lambda: farm.client.status("b1")["jobs"]["done"] == 1)
    folders = disk_events.check_durable_commit(events, out)
    assert {f.name: n for f, n in folders.items()} == {name: 1 for name in (  # once each; the dataset's own
        "images", "depth", "masks", "metadata", "annotations", "out")}  # folder for jobs.jsonl's (new) name
    annotations = max(i for i, (what, path, _) in enumerate(events) if path == out / "annotations")
    assert any(i > annotations and what == "fsync" and path == out / "jobs.jsonl"
               for i, (what, path, _) in enumerate(events))
    assert len(list((out / "annotations").glob("*-ann.json"))) == task.frames


def test_a_success_without_all_its_frames_is_a_failed_attempt_that_names_them(farm, tmp_path):
    """A DONE that says ok while frames of its job did not arrive (a worker writing its staging folder on a disk
    the coordinator does not see, a lost upload) was recorded done with no frames, and its dataset called
    complete: a silent loss. It is a failed attempt now, whose error names the missing frames; the job runs again."""
    data = yaml.safe_load(TINY.read_text())
    data["frames"] = 2
    out = tmp_path / "out"
    farm.client.submit(batch_id="b1", recipe=yaml.safe_dump(data), recipe_dir=str(TINY.parent), out=str(out), count=1)
    w = StandIn(farm, "w")
    task = w.take()
    w.finish(task, frames=2)  # nothing staged
    assert wait_for(lambda: farm.client.status("b1")["jobs"]["queued"] == 1)
    task = w.take()
    farm_procs.stage_frames(task)
    (Path(task.staging) / "annotations" / "0000000000-0001-cam-ann.json").unlink()  # frame 1 lost on the way
    w.finish(task, frames=2)
    assert wait_for(lambda: len(farm.client.logs("b1", 0)) == 2 and farm.client.status("b1")["jobs"]["queued"])
    first, second = farm.client.logs("b1", 0)
    assert first["status"] == second["status"] == "failed"
    assert "2 of the 2 frames of job 0 did not arrive (0000000000-0000-cam, 0000000000-0001-cam)" in first["error"]
    assert "1 of the 2 frames of job 0 did not arrive (0000000000-0001-cam)" in second["error"]
    assert not list((out / "annotations").iterdir()) and not (out / "jobs.jsonl").exists()
    w.render(w.take())
    assert wait_for(lambda: farm.client.status("b1")["jobs"]["done"] == 1)
    assert sorted(p.name for p in (out / "annotations").iterdir()) == [
        "0000000000-0000-cam-ann.json", "0000000000-0001-cam-ann.json"]


def test_priorities_order_dispatch(farm, tmp_path):
    farm.submit(tmp_path / "low", count=2, batch_id="low", priority=10)
    farm.submit(tmp_path / "high", count=1, batch_id="high", priority=90)
    w = StandIn(farm, "w")
    assert w.take().batch_id == "high"
    farm.client.set_priority("low", 100)
    farm.submit(tmp_path / "mid", count=1, batch_id="mid", priority=50)
    assert w.take().batch_id == "low"


def test_three_failing_workers_fail_a_job_and_block_a_bad_worker(farm, tmp_path):
    farm.submit(tmp_path / "out", count=4)
    workers = [StandIn(farm, n) for n in ("w1", "w2", "w3")]
    for worker in workers:  # job 0 fails everywhere
        task = worker.take()
        assert task.job_id == 0
        worker.finish(task, ok=False, error="AssetError: bin.obj has no mesh")
    status = farm.client.status("b1")
    assert status["jobs"]["failed"] == 1
    assert status["errors"] == [{"job_id": 0, "error": "AssetError: bin.obj has no mesh"}]
    w1 = workers[0]
    for _ in range(2):  # w1 fails two more jobs: three of this batch -> blocked from it
        task = w1.take()
        w1.finish(task, ok=False, error="boom")
    assert w1.take() is None
    assert workers[1].take() is not None  # the others still get work
    assert farm.client.retry("b1")["requeued"] == 1
    assert w1.take() is not None  # retry forgets failures and blocks


def test_stale_results_are_rejected(farm, tmp_path):
    farm.submit(tmp_path / "out", count=1)
    a, b = StandIn(farm, "a"), StandIn(farm, "b")
    old = a.take()
    assert a.take() is not None  # a asks again: its old attempt is lost and the job goes out anew
    a.finish(old)  # the old attempt's result arrives late
    assert wait_for(lambda: farm.coord.dropped["stale_result"] == 1)
    assert farm.client.status("b1")["jobs"]["done"] == 0
    del b


def test_cancel_reaches_the_running_worker(farm, tmp_path):
    farm.submit(tmp_path / "out", count=5)
    w = StandIn(farm, "w")
    task = w.take()
    status = farm.client.cancel("b1")
    assert status["status"] == "cancelled" and status["jobs"]["cancelled"] == 5
    kind, msg = w.recv()
    while kind == "HEARTBEAT":
        kind, msg = w.recv()
    assert (kind, msg.attempt_id) == ("CANCEL", task.attempt_id)
    assert w.take() is None


def test_garbage_on_every_socket_is_counted_and_survived(farm, tmp_path):
    junk = [[os.urandom(40)], [b"XX9", b"HELLO", b"{}"], [p.VERSION, b"NOPE", b"{}"], [p.VERSION, b"HELLO", b"not json"],
            [p.VERSION, b"TASK", b"{}"],
            [p.VERSION, b"HELLO", b"x" * (p.MAX_FRAME + 1)]]  # ZeroMQ itself refuses this one (MAXMSGSIZE)
    for endpoint in (farm.coord.workers_endpoint, farm.coord.clients_endpoint):
        sock = farm.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        for frames in junk:
            sock.send_multipart(frames)
        sock.close()
    stranger = farm.context.socket(zmq.DEALER)  # valid frames from an identity that never said HELLO
    stranger.setsockopt(zmq.LINGER, 0)
    stranger.connect(farm.coord.workers_endpoint)
    stranger.send_multipart(p.encode("REQUEST", p.Request(worker_id="stranger")))
    farm.submit(tmp_path / "out", count=1)  # the next real request is answered
    assert wait_for(lambda: farm.coord.dropped["unknown_identity"] == 1)
    assert farm.coord.dropped["malformed"] == 10  # five of each socket's six; the oversized never arrives
    assert not stranger.poll(300)  # the stranger got nothing
    stranger.close()
    assert StandIn(farm, "w").take() is not None


def test_state_survives_a_coordinator_restart(tmp_path):
    farm = Farm(tmp_path / "state")
    farm.submit(tmp_path / "out", count=3)
    w = StandIn(farm, "w")
    first = w.take()
    w.render(first)
    running = w.take()
    assert wait_for(lambda: farm.client.status("b1")["jobs"]["done"] == 1)
    farm.stop()
    farm = Farm(tmp_path / "state")  # a new process would see the same file
    try:
        assert farm.client.status("b1")["jobs"] == {"queued": 1, "running": 1, "done": 1, "failed": 0, "cancelled": 0}
        # the worker re-announces its attempt
        again = farm_procs.StandIn(farm.coord.workers_endpoint, "w", farm.context, running=running.attempt_id)
        again.render(running)
        assert wait_for(lambda: farm.client.status("b1")["jobs"]["done"] == 2)
        with pytest.raises(FarmError, match="no batch 'nope'"):
            farm.client.status("nope")
    finally:
        farm.stop()


def test_hung_and_lost_workers_have_their_jobs_requeued(tmp_path):
    farm = Farm(tmp_path / "state", hang_after=0.6, lost_after=1.0)
    try:
        farm.submit(tmp_path / "out", count=2)
        hung, silent = StandIn(farm, "hung"), StandIn(farm, "silent")
        stuck = hung.take()
        gone = silent.take()
        deadline = time.time() + 5
        cancelled = None
        while time.time() < deadline and cancelled is None:  # heartbeats, but never any progress
            hung.send("HEARTBEAT", p.Heartbeat(worker_id="hung", attempt_id=stuck.attempt_id))
            if hung.sock.poll(100):
                kind, msg = p.decode(hung.sock.recv_multipart())
                if kind == "CANCEL":
                    cancelled = msg.attempt_id
        assert cancelled == stuck.attempt_id
        assert wait_for(lambda: farm.client.status("b1")["jobs"]["queued"] == 2, timeout=5)  # both back in the queue
        assert wait_for(lambda: {w["id"]: w["status"] for w in farm.client.workers()}["silent"] == "lost")
        del gone
    finally:
        farm.stop()
