"""Leasing ahead (issue 13): a worker holds the next task while its Blender child renders one, so the child never
waits for a round trip to the coordinator; one message carries several tasks or results. Real coordinator and
workers as processes on loopback, real SQLite; real Blender children where a worker's child is involved;
stand-in workers (the protocol spoken by the test) where the exact messages matter."""
import json
import subprocess
import time
from pathlib import Path

import pytest
import zmq

from farm_procs import Farm, StandIn, check_dataset, cli, stage_frames, wait_for

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"


def attempts(farm, jobs: int) -> list[dict]:
    """Every attempt of the batch's jobs, with the job id."""
    return [{**a, "job_id": j} for j in range(jobs) for a in farm.client.logs("batch", j)]


def request(w: StandIn, take: int, holding=(), rendered=()):
    """A REQUEST for ``take`` tasks: the tasks that came back (TASK or TASKS), [] for NO_TASK."""
    w.send("REQUEST", w.p.Request(worker_id=w.name, take=take, holding=list(holding), rendered=list(rendered)))
    kind, msg = w.recv()
    return {"TASK": lambda: [msg], "TASKS": lambda: msg.tasks, "NO_TASK": lambda: []}[kind]()


@pytest.fixture()
def standin_farm(tmp_path):
    farm = Farm(tmp_path, workers=0)
    yield farm
    farm.stop()


def test_held_jobs_go_back_to_the_queue_when_the_worker_is_killed(tmp_path, slow_recipe):
    farm = Farm(tmp_path, workers=1)  # the worker's default: one task held ahead
    try:
        out = tmp_path / "out"
        farm.submit(slow_recipe, 5, out)
        # one rendering, one held: status shows the held one with the queued jobs, not as running
        status = farm.wait(lambda s: s["jobs"]["running"] == 1 and s["held"] == 1, timeout=180)
        assert status["jobs"]["queued"] >= 1 and "held ahead" in status["reason"]
        farm.workers[0].kill()  # SIGKILL: no BYE; the coordinator finds it silent (lost after 3 s)
        farm.workers[0].wait()
        status = farm.wait(lambda s: s["jobs"]["running"] == 0 and s["held"] == 0 and s["jobs"]["done"] < 5,
                           timeout=60)
        lost = [a for a in attempts(farm, 5) if a["status"] == "lost"]
        assert len(lost) >= 2 and {a["worker_id"] for a in lost} == {"w0"}, lost  # the running and the held one
        farm.workers.append(farm.start_worker("w1"))
        status = farm.wait(lambda s: s["jobs"]["done"] == 5, timeout=240)
        assert status["jobs"]["failed"] == 0
        check_dataset(out, 5, 3)  # every job once, no partial file
    finally:
        farm.stop()


def test_a_held_job_of_a_cancelled_batch_is_not_run(tmp_path, slow_recipe):
    farm = Farm(tmp_path, workers=1)
    try:
        farm.submit(slow_recipe, 6, tmp_path / "out")
        farm.wait(lambda s: s["jobs"]["running"] == 1 and s["held"] == 1, timeout=180)
        farm.client.cancel("batch")
        # a job submitted after the cancel runs on the same worker once its child is back: a held task it had
        # kept would have run before it, so when this job is done, whatever was going to run has run
        farm.client.submit(batch_id="after", recipe=TINY.read_text(), recipe_dir=str(TINY.parent),
                           out=str(tmp_path / "after"), count=1)
        wait_for(lambda: farm.client.status("after")["jobs"]["done"] == 1, 300, "the job submitted after the cancel")
        status = farm.client.status("batch")
        assert status["jobs"]["running"] == 0 and status["held"] == 0
        cancelled = [a for a in attempts(farm, 6) if a["status"] == "cancelled"]
        assert len(cancelled) == 2, cancelled  # the running one and the held one
        assert not any(a["log"] for a in cancelled), "a cancelled attempt ran and reported back"
        assert farm.client.status()["dropped"].get("stale_result", 0) == 0  # no result of a cancelled attempt came
        assert all(w["status"] != "busy" for w in farm.client.workers())
        assert not list((tmp_path / "out" / "annotations").glob("*"))  # nothing of the cancelled jobs landed
    finally:
        farm.stop()


def test_every_job_once_with_two_workers_holding_ahead(tmp_path):
    farm = Farm(tmp_path, workers=2)
    try:
        out = tmp_path / "out"
        farm.submit(TINY, 10, out)
        seen_held = False
        deadline = time.time() + 300
        while time.time() < deadline:
            status = farm.client.status("batch")
            seen_held |= status["held"] > 0
            if status["jobs"]["done"] == 10:
                break
            time.sleep(0.05)
        assert status["jobs"]["done"] == 10 and status["jobs"]["failed"] == 0
        assert seen_held, "no job was ever held ahead"
        check_dataset(out, 10, 1)
        lines = [json.loads(line) for line in (out / "jobs.jsonl").read_text().splitlines()]
        assert sorted(r["id"] for r in lines) == list(range(10))  # no duplicate line, no duplicate frame
        assert len({p.name for p in (out / "images").glob("*.png")}) == len(list((out / "images").glob("*.png")))
    finally:
        farm.stop()


def test_a_short_queue_is_shared_not_held_by_one_worker(tmp_path, slow_recipe):
    farm = Farm(tmp_path, workers=2)
    try:
        farm.ready()
        deadline = time.time() + 180  # both workers connected (their children up) before the jobs exist
        while len([w for w in farm.client.workers() if w["status"] == "idle"]) < 2 and time.time() < deadline:
            time.sleep(0.2)
        farm.submit(slow_recipe, 2, tmp_path / "out")  # a job takes seconds: the other worker asks meanwhile
        status = farm.wait(lambda s: s["jobs"]["done"] == 2, timeout=240)
        assert status["jobs"]["failed"] == 0
        done_by = {a["job_id"]: a["worker_id"] for a in attempts(farm, 2) if a["status"] == "done"}
        assert sorted(done_by.values()) == ["w0", "w1"], done_by  # one each: neither held the other's job
    finally:
        farm.stop()


def test_leases_ahead_only_what_the_queue_can_spare(standin_farm, tmp_path):
    farm = standin_farm
    farm.submit(TINY, 3, tmp_path / "out")
    a, b = StandIn(f"tcp://127.0.0.1:{farm.port}", "a"), StandIn(f"tcp://127.0.0.1:{farm.port}", "b")
    try:
        first = request(a, take=3)  # 3 queued, 2 live workers: one to run and one held, one left for b
        assert [t.job_id for t in first] == [0, 1]
        status = farm.client.status("batch")
        assert status["held"] == 1 and status["jobs"]["running"] == 1 and status["jobs"]["queued"] == 2
        # a asks again while it holds both: 1 queued for 2 live workers is nothing to hold ahead
        assert request(a, take=1, holding=[t.attempt_id for t in first]) == []
        second = request(b, take=3)
        assert [t.job_id for t in second] == [2]
        # a reports both in one message; its held job ran (a DONE for it names it) and both are done once
        for task in first:
            stage_frames(task)
        a.send("RESULTS", a.p.Results(results=[a.p.Done(attempt_id=t.attempt_id, ok=True, frames=1) for t in first]))
        b.render(second[0])
        status = farm.wait(lambda s: s["jobs"]["done"] == 3)
        assert status["held"] == 0 and status["jobs"]["running"] == 0
        lines = (tmp_path / "out" / "jobs.jsonl").read_text().splitlines()
        assert sorted(json.loads(line)["id"] for line in lines) == [0, 1, 2]
    finally:
        a.close()
        b.close()


def test_a_worker_whose_child_is_free_takes_the_last_job_at_once(standin_farm, tmp_path):
    """A worker whose only attempt is rendered (its files being made durable) has a free child: it gets the last
    queued job now, as a worker that holds nothing would, not NO_TASK until that attempt is done (it waited a
    heartbeat: the last job of every batch started half a second late on the embedded farm)."""
    farm = standin_farm
    farm.submit(TINY, 2, tmp_path / "out")
    w = StandIn(f"tcp://127.0.0.1:{farm.port}", "w")
    try:
        (first,) = request(w, take=1)
        # still held ahead when not rendered: one queued job for one live worker is nothing to hold ahead
        assert request(w, take=1, holding=[first.attempt_id]) == []
        (last,) = request(w, take=1, holding=[first.attempt_id], rendered=[first.attempt_id])
        assert last.job_id == 1
        status = farm.client.status("batch")
        assert status["held"] == 0 and status["jobs"]["running"] == 2 and status["jobs"]["queued"] == 0
        w.render(first)
        w.render(last)
        status = farm.wait(lambda s: s["jobs"]["done"] == 2)
        assert status["jobs"]["failed"] == 0
    finally:
        w.close()


def test_a_result_twice_in_one_message_is_taken_once(standin_farm, tmp_path):
    farm = standin_farm
    farm.submit(TINY, 4, tmp_path / "out")
    w = StandIn(f"tcp://127.0.0.1:{farm.port}", "w")
    try:
        tasks = request(w, take=4)
        assert [t.job_id for t in tasks] == [0, 1, 2, 3]  # a single worker may hold what the queue has
        stage_frames(tasks[0])
        done = w.p.Done(attempt_id=tasks[0].attempt_id, ok=True, frames=1)
        w.send("RESULTS", w.p.Results(results=[done, done]))
        status = farm.wait(lambda s: s["jobs"]["done"] == 1)
        assert farm.client.status()["dropped"].get("stale_result") == 1
        lines = (tmp_path / "out" / "jobs.jsonl").read_text().splitlines()
        assert [json.loads(line)["id"] for line in lines] == [0]
        # a REQUEST that no longer names two of its held jobs gives them up: back to the queue (one of them is
        # leased again at once, as a new attempt), not counted as failures
        (again,) = request(w, take=1, holding=[tasks[1].attempt_id])
        assert again.job_id in (2, 3) and again.attempt_id not in {t.attempt_id for t in tasks}
        status = farm.client.status("batch")
        assert status["jobs"]["queued"] == 3 and status["held"] == 2 and status["jobs"]["running"] == 0
        w.render(tasks[2])  # a result of an attempt given up is refused
        status = farm.wait(lambda s: farm.client.status()["dropped"].get("stale_result") == 2)
        assert status["jobs"]["done"] == 1
    finally:
        w.close()


def test_a_held_job_does_not_hang_until_it_starts(tmp_path):
    farm = Farm(tmp_path, workers=0, coordinator_args=("--hang-after", 2))
    w = StandIn(f"tcp://127.0.0.1:{farm.port}", "w")
    try:
        farm.submit(TINY, 2, tmp_path / "out")
        running, held = request(w, take=2)
        for _ in range(8):  # 4 s rendering the first (progress keeps it alive); the second waits, held
            w.beat(running.attempt_id)
            w.send("PROGRESS", w.p.Progress(attempt_id=running.attempt_id, frames_done=0, frames_total=1))
            time.sleep(0.5)
        assert farm.client.status("batch")["held"] == 1, "the held job was cancelled as hung while it waited"
        w.render(running)
        w.beat(held.attempt_id)  # the worker starts it: running from now, its hang clock with it
        farm.wait(lambda s: s["held"] == 0 and s["jobs"]["running"] == 1)
        deadline = time.monotonic() + 60
        while True:  # alive (heartbeats) but no progress: hung after 2 s
            assert time.monotonic() < deadline, "the started job never hung"
            w.beat(held.attempt_id)
            if w.sock.poll(500):
                kind, msg = w.recv()
                if kind == "CANCEL":
                    break
        assert msg.attempt_id == held.attempt_id
    finally:
        w.close()
        farm.stop()


def test_a_peer_of_another_protocol_version_is_refused_with_both_versions_named(standin_farm, tmp_path):
    from synthfarm.farm import protocol as p

    farm = standin_farm
    farm.ready()
    context = zmq.Context.instance()
    for endpoint, kind in ((f"tcp://127.0.0.1:{farm.port}", b"HELLO"), (f"tcp://127.0.0.1:{farm.port + 1}", b"LIST")):
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        try:
            sock.send_multipart([b"SF1", kind, json.dumps({"worker_id": "old"} if kind == b"HELLO" else {}).encode()])
            assert sock.poll(10_000), f"no answer to an {kind.decode()} of protocol SF1"
            version, answer, body = sock.recv_multipart()
            assert (version, answer) == (p.VERSION, b"REFUSED")
            error = json.loads(body)["error"]
            assert "SF1" in error and p.VERSION.decode() in error and "same synthfarm version" in error
        finally:
            sock.close()
    assert farm.client.status()["dropped"]["version"] == 2

    # a worker of this version, against a coordinator of another: it stops and says why
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    worker = cli("worker", "--connect", f"tcp://127.0.0.1:{port}", "--name", "new", stderr=subprocess.PIPE)
    try:
        assert router.poll(180_000), "the worker never said HELLO"
        identity, *_ = router.recv_multipart()
        router.send_multipart([identity, b"SF9", b"REFUSED", b'{"error": "this coordinator speaks SF9"}'])
        _, err = worker.communicate(timeout=60)
        assert worker.returncode != 0
        assert "protocol SF9" in err.decode() and p.VERSION.decode() in err.decode(), err.decode()[-2000:]
    finally:
        if worker.poll() is None:
            worker.kill()
        router.close()
