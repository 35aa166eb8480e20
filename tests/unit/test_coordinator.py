"""The coordinator over real ZeroMQ sockets on loopback and a real SQLite file, with stand-in workers
that speak the protocol (no Blender): scheduling, failures, blocklists, retries, cancel, garbage."""
import json
import os
import sqlite3
import subprocess
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
from synthfarm.farm.store import Store

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
    bytes durable before it gets its name (the worker's writer fsynced them in the staging folder: the coordinator
    renames them and does not fsync them again), each folder fsynced once after its renames, the annotations last,
    their folder fsynced before the job's "done" line reaches jobs.jsonl."""
    out = tmp_path / "out"
    farm.submit(out, count=1)
    w = StandIn(farm, "w")
    task = w.take()
    events = disk_events.record(monkeypatch)
    farm_procs.stage_frames(task)
    staged = len(events)
    w.finish(task, frames=task.frames)
    assert wait_for(lambda: farm.client.status("b1")["jobs"]["done"] == 1)
    folders = disk_events.check_durable_commit(events, out)
    assert {f.name: n for f, n in folders.items() if out in (f, f.parent)} == {name: 1 for name in (
        "images", "depth", "masks", "metadata", "annotations", "out")}  # once each; the dataset's own folder
    #                                                                   for jobs.jsonl's (new) name
    committed = {e.inode for e in events[staged:] if e.what == "rename" and e.path.parent.parent == out}
    assert len(committed) == 4 * task.frames + 1  # image, depth, mask, metadata, annotation
    assert not [e.path for e in events[staged:] if e.what == "fsync" and e.inode in committed]  # synced once, staged
    annotations = max(i for i, (what, path, *_) in enumerate(events) if path == out / "annotations")
    assert any(i > annotations and what == "fsync" and path == out / "jobs.jsonl"
               for i, (what, path, *_) in enumerate(events))
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




def lease(w, take: int) -> list:
    """The tasks a stand-in gets for a REQUEST of ``take`` (leasing ahead: one TASKS message for several)."""
    w.send("REQUEST", w.p.Request(worker_id=w.name, take=take))
    kind, msg = w.recv()
    return {"TASK": lambda: [msg], "TASKS": lambda: msg.tasks, "NO_TASK": lambda: []}[kind]()


def results(w, tasks) -> None:
    """One RESULTS message saying every task succeeded (so they end in one cycle of the coordinator)."""
    w.send("RESULTS", w.p.Results(results=[w.p.Done(attempt_id=t.attempt_id, ok=True, frames=t.frames)
                                           for t in tasks]))


def test_the_successes_of_one_cycle_land_as_one_durable_group(farm, tmp_path, monkeypatch):
    """Four jobs done in one message (so in one coordinator cycle) are committed as one durable group: each of
    the dataset's folders fsynced once for all four, not once per job; then recorded done, their jobs.jsonl lines
    after; their emptied staging folders removed (off the cycle)."""
    out = tmp_path / "out"
    farm.submit(out, count=5)  # one left: the batch does not finish (which removes all staging at once)
    w = StandIn(farm, "w")
    tasks = lease(w, 4)
    assert len(tasks) == 4
    events = disk_events.record(monkeypatch)
    for task in tasks:
        farm_procs.stage_frames(task)
    results(w, tasks)
    assert wait_for(lambda: farm.client.status("b1")["jobs"]["done"] == 4)
    folders = disk_events.check_durable_commit(events, out)
    assert {f.name: n for f, n in folders.items() if out in (f, f.parent)} == {name: 1 for name in (
        "images", "depth", "masks", "metadata", "annotations", "out")}
    done = [json.loads(line) for line in (out / "jobs.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in done if r["status"] == "done") == [0, 1, 2, 3]
    assert all(r["stems"] == [f"{r['id']:010d}-0000-cam"] for r in done)
    assert wait_for(lambda: not list((out / ".staging").iterdir()))


def test_a_message_that_raises_lands_none_of_its_successes(farm, tmp_path, monkeypatch):
    """A RESULTS message whose second result raises is undone as a whole: the first success is not committed
    either (its files stay staged, its attempt out); the same message again then lands both."""
    out = tmp_path / "out"
    farm.submit(out, count=2)
    w = StandIn(farm, "w")
    tasks = lease(w, 2)
    for task in tasks:
        farm_procs.stage_frames(task)
    save_log = farm.coord.store.save_log

    def failing(attempt_id, text):
        if attempt_id == tasks[1].attempt_id:
            raise RuntimeError("the log of the second result cannot be saved")
        save_log(attempt_id, text)

    monkeypatch.setattr(farm.coord.store, "save_log", failing)
    results(w, tasks)
    assert wait_for(lambda: farm.coord.dropped["internal_error"] == 1)
    time.sleep(0.5)  # a few more cycles
    assert farm.client.status("b1")["jobs"]["done"] == 0
    assert not list((out / "annotations").glob("*-ann.json"))
    assert all((out / ".staging" / t.attempt_id / "annotations").is_dir() for t in tasks)
    monkeypatch.setattr(farm.coord.store, "save_log", save_log)
    results(w, tasks)
    assert wait_for(lambda: farm.client.status("b1")["jobs"]["done"] == 2)
    assert farm.coord.dropped["stale_result"] == 0
    assert len(list((out / "annotations").glob("*-ann.json"))) == 2


def test_a_landing_whose_end_cannot_be_recorded_is_lost_and_runs_again(farm, tmp_path, monkeypatch):
    """Recording a landed success raises (here its jobs.jsonl line): the attempt is lost, not left half-ended, its
    job goes back to the queue and is done by the next attempt; a state that held a landing attempt when it was
    opened (a crash between the cycle's commit that marked it and the one that records its end) has it lost and
    requeued."""
    out = tmp_path / "out"
    farm.submit(out, count=2)
    w = StandIn(farm, "w")
    task = w.take()
    add = farm.coord.jobs_log.add
    monkeypatch.setattr(farm.coord.jobs_log, "add", lambda out, record: (_ for _ in ()).throw(OSError("no line")))
    w.render(task)
    assert wait_for(lambda: [a["status"] for a in farm.client.logs("b1", task.job_id)] == ["lost"])
    assert farm.client.logs("b1", task.job_id)[0]["error"] == "its end could not be recorded"
    monkeypatch.setattr(farm.coord.jobs_log, "add", add)
    for _ in range(2):
        w.render(w.take())
    assert wait_for(lambda: farm.client.status("b1")["jobs"]["done"] == 2)
    farm.stop()
    state = tmp_path / "state" / "farm.sqlite"
    with sqlite3.connect(state) as db:
        db.execute("UPDATE attempts SET status='landing' WHERE status='done' AND job_id=1")
        db.execute("UPDATE jobs SET status='running' WHERE job_id=1")
    store = Store(state)
    try:
        assert store.db.execute("SELECT status FROM jobs WHERE job_id=1").fetchone() == ("queued",)
        assert store.db.execute("SELECT COUNT(*) FROM attempts WHERE status='landing'").fetchone() == (0,)
        assert store.db.execute("SELECT n FROM counts WHERE status='queued'").fetchone() == (1,)
    finally:
        store.close()


@pytest.fixture()
def small_disk(tmp_path):
    disk = farm_procs.SmallDisk(tmp_path / "disk", size="4m")
    yield disk
    disk.close()


def land_on_a_broken_disk(farm, out: Path, stage, breaks) -> list[dict]:
    """Two jobs staged by one worker (``stage`` each), the dataset's disk broken (``breaks()``), both reported done
    in one message: their attempts, once both jobs are back in the queue."""
    farm.submit(out, count=2)
    w = StandIn(farm, "w")
    tasks = lease(w, 2)
    for task in tasks:
        stage(task)
    breaks()
    results(w, tasks)
    assert wait_for(lambda: farm.client.status("b1")["jobs"]["queued"] == 2)
    return [attempt for job in (0, 1) for attempt in farm.client.logs("b1", job)]


def test_a_group_that_cannot_be_committed_fails_each_of_its_attempts(tmp_path, small_disk):
    """The dataset's disk refuses the cycle's group (here read-only: EROFS; an I/O error alike): each attempt of it
    is a failed attempt whose error names the dataset and the error, nothing of them is recorded done, their
    staging folders go; once the disk takes writes again the jobs run again and are done."""
    farm = Farm(tmp_path / "state", out_root=small_disk.path)
    try:
        out = small_disk.path / "out"
        attempts = land_on_a_broken_disk(farm, out, farm_procs.stage_frames, lambda: subprocess.run(
            ["mount", "-o", "remount,ro", str(small_disk.path)], check=True))
        assert len(attempts) == 2
        for attempt in attempts:
            assert attempt["status"] == "failed" and str(out) in attempt["error"], attempt
            assert "Read-only file system" in attempt["error"], attempt
        assert not list((out / "annotations").glob("*-ann.json")) and not (out / "jobs.jsonl").exists()
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk.path)], check=True)
        v = StandIn(farm, "v")  # w leaves the jobs it failed to v
        for _ in range(2):
            v.render(v.take())
        assert wait_for(lambda: farm.client.status("b1")["jobs"]["done"] == 2)
        assert len(list((out / "annotations").glob("*-ann.json"))) == 2
        assert not list((out / ".staging").glob("*"))  # the failed attempts' too (with the finished batch's)
    finally:
        farm.stop()


def stage_with_model(task) -> None:
    """The task's frames and a model (models/ is a folder the dataset does not have yet: the commit makes it)."""
    farm_procs.stage_frames(task)
    (Path(task.staging) / "models").mkdir()
    (Path(task.staging) / "models" / "abc.ply").write_bytes(b"ply\n")


def test_a_group_without_space_sends_its_attempts_back_uncounted_and_pauses_the_batch(tmp_path):
    """The dataset's disk has no room for the group (here no inode left for the models folder it must make:
    ENOSPC): each attempt goes back to the queue, not counted as a failure, the batch pauses as out of space, and
    nothing is recorded done; with room again the jobs are done."""
    disk = farm_procs.SmallDisk(tmp_path / "disk", size="4m", inodes=400)
    farm = Farm(tmp_path / "state", out_root=disk.path, min_free_bytes=1)
    try:
        out, fillers = disk.path / "out", []
        attempts = land_on_a_broken_disk(farm, out, stage_with_model, lambda: fillers.extend(disk.fill_inodes()))
        assert [(a["status"], a["error"]) for a in attempts] == [("lost", "out of space")] * 2
        status = farm.client.status("b1")
        assert status["jobs"]["failed"] == 0 and status["jobs"]["done"] == 0
        assert not list((out / "annotations").glob("*-ann.json")) and not (out / "jobs.jsonl").exists()
        for path in fillers:
            path.unlink()
        v = StandIn(farm, "v")
        assert wait_for(lambda: "out of space" not in farm.client.status("b1")["reason"], timeout=10)
        for _ in range(2):
            task = v.take()
            stage_with_model(task)
            v.finish(task, frames=task.frames)
        assert wait_for(lambda: farm.client.status("b1")["jobs"]["done"] == 2)
        assert (out / "models" / "abc.ply").read_bytes() == b"ply\n"
    finally:
        farm.stop()
        disk.close()


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
