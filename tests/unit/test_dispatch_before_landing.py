"""A coordinator cycle sends its next tasks before it lands its successes' files (their folder fsyncs): the state
that gave a task is committed before the task leaves, and a success is committed ``landing`` meanwhile. Real
coordinator, real SQLite file, real ZeroMQ (the workers' socket on inproc, so that two messages a worker sends are
both there when the coordinator next reads: one cycle handles both), real files."""
import json
import sqlite3
import threading
from pathlib import Path

import farm_procs

from synthfarm.addon.core.dataset.native import DatasetWriter
from synthfarm.farm.coordinator import Coordinator

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.yaml"


def status_of(coord: Coordinator, attempt_id: str) -> str | None:
    """An attempt's status as committed (read by another connection, as a restarted coordinator would)."""
    db = sqlite3.connect(f"file:{coord.store.path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT status FROM attempts WHERE id=?", (attempt_id,)).fetchone()
        return row[0] if row else None
    finally:
        db.close()


def wait_for(predicate) -> bool:
    return bool(farm_procs.wait_for(predicate, 30, "the farm's state", every=0.02))  # fails naming what it waited for


def test_the_next_task_leaves_before_the_landing_and_its_lease_is_committed_first(inproc_farm, tmp_path, monkeypatch):
    coord, client, context = inproc_farm
    client.submit(batch_id="b", recipe=TINY.read_text(), recipe_dir=str(TINY.parent), out=str(tmp_path / "out"),
                  count=3)
    a = farm_procs.StandIn(coord.workers_endpoint, "a", context)
    b = farm_procs.StandIn(coord.workers_endpoint, "b", context)
    first, second = a.take(), b.take()

    commit_stagings = DatasetWriter.commit_stagings
    landing, release, next_task_seen = threading.Event(), threading.Event(), threading.Event()
    seen_during_landing = []

    def held(self, stagings):
        if not landing.is_set():  # the first landing (a's) holds the coordinator while b's two messages queue up
            landing.set()
            assert release.wait(20)
        else:  # b's landing: its next task must have reached b already
            seen_during_landing.append(next_task_seen.wait(10))
        return commit_stagings(self, stagings)

    monkeypatch.setattr(DatasetWriter, "commit_stagings", held)
    a.render(first)
    assert landing.wait(20)
    b.render(second)  # DONE, then REQUEST: handled in one cycle (both are there when the coordinator next reads)
    b.send("REQUEST", b.p.Request(worker_id="b"))
    release.set()
    kind, task = b.recv(timeout=20)
    assert kind == "TASK" and task.job_id == 2
    # while the coordinator still lands b's success: the lease that gave this task is committed, and the success is
    # committed `landing` (a crash now loses it and runs its job again: Store._lose_landing)
    assert status_of(coord, task.attempt_id) == "running"
    assert status_of(coord, second.attempt_id) == "landing"
    next_task_seen.set()
    assert wait_for(lambda: client.status("b")["jobs"]["done"] == 2)
    assert seen_during_landing == [True]
    assert status_of(coord, second.attempt_id) == "done"
    b.render(task)
    assert wait_for(lambda: client.status("b")["jobs"]["done"] == 3)
    lines = (tmp_path / "out" / "jobs.jsonl").read_text().splitlines()
    assert len(lines) == 3


def test_a_landing_whose_recording_cannot_be_committed_is_lost_once_the_state_is_writable(inproc_farm, tmp_path,
                                                                                          monkeypatch):
    """The cycle's second commit (recording its successes done) fails as on a full disk: the successes stay
    committed `landing` from the first; once a probe write passes, they are lost and their jobs run again (before,
    they stayed `landing`, neither out nor done, and their batch never finished)."""
    coord, client, context = inproc_farm
    out = tmp_path / "out"
    client.submit(batch_id="b", recipe=TINY.read_text(), recipe_dir=str(TINY.parent), out=str(out), count=1)
    w = farm_procs.StandIn(coord.workers_endpoint, "w", context)
    task = w.take()

    commit, landed = coord.store.commit, []

    def full_after_landing():
        if landed == [True]:  # the commit right after the landing: the disk is full
            landed.append(False)
            err = sqlite3.OperationalError("database or disk is full")
            err.sqlite_errorcode = sqlite3.SQLITE_FULL
            raise err
        return commit()

    land = coord.landing.land

    def landing_then_full():
        done = land()
        if done and not landed:
            landed.append(True)
        return done

    monkeypatch.setattr(coord.store, "commit", full_after_landing)
    monkeypatch.setattr(coord.landing, "land", landing_then_full)
    w.render(task)
    assert wait_for(lambda: landed == [True, False])
    assert wait_for(lambda: status_of(coord, task.attempt_id) == "lost")  # the probe passed: lost, job requeued
    again = w.take(timeout=10)
    assert again is not None and again.job_id == task.job_id and again.attempt_id != task.attempt_id
    w.render(again)
    assert wait_for(lambda: client.status("b")["jobs"]["done"] == 1)
    assert [a["status"] for a in client.logs("b", task.job_id)] == ["lost", "done"]
    assert len((out / "jobs.jsonl").read_text().splitlines()) == 1  # recorded once


def test_a_group_whose_one_end_cannot_be_recorded_records_the_others(inproc_farm, tmp_path, monkeypatch):
    """A cycle's successes of one dataset are recorded in one savepoint; when recording one raises (its jobs.jsonl
    line), that savepoint is undone and each is recorded on its own: the others are done, that one is lost and runs
    again, and the error is logged and counted once."""
    coord, client, context = inproc_farm
    out = tmp_path / "out"
    client.submit(batch_id="b", recipe=TINY.read_text(), recipe_dir=str(TINY.parent), out=str(out), count=3)
    w = farm_procs.StandIn(coord.workers_endpoint, "w", context)
    w.send("REQUEST", w.p.Request(worker_id="w", take=3))
    kind, msg = w.recv()
    assert kind == "TASKS" and len(msg.tasks) == 3
    add = coord.jobs_log.add

    def add_but_job_1(out, record):
        if record["id"] == 1:
            raise OSError("no line for job 1")
        add(out, record)

    monkeypatch.setattr(coord.jobs_log, "add", add_but_job_1)
    for task in msg.tasks:
        farm_procs.stage_frames(task)
    w.send("RESULTS", w.p.Results(results=[w.p.Done(attempt_id=t.attempt_id, ok=True, frames=t.frames)
                                           for t in msg.tasks]))
    assert wait_for(lambda: client.status("b")["jobs"]["done"] == 2)
    assert [a["status"] for a in client.logs("b", 1)] == ["lost"]
    assert client.logs("b", 1)[0]["error"] == "its end could not be recorded"
    assert coord.dropped["internal_error"] == 1
    monkeypatch.setattr(coord.jobs_log, "add", add)
    w.send("REQUEST", w.p.Request(worker_id="w"))
    kind, again = w.recv()
    assert kind == "TASK" and again.job_id == 1
    w.render(again)
    assert wait_for(lambda: client.status("b")["jobs"]["done"] == 3)
    lines = (out / "jobs.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == [0, 1, 2]
