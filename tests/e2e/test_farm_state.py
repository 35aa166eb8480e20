"""State that survives damage, with real processes on loopback (issue 14, finding 7): a damaged database is
detected with a recovery command that works; jobs.jsonl has one line per job, ever, and is rebuilt when
deleted; a full state disk stops dispatch with the reason in status, and dispatch resumes."""
import json
import sqlite3
import subprocess
import time
from pathlib import Path

import zmq

from farm_procs import Farm, SmallDisk, StandIn, raw_request
from synthfarm.farm.transfer import VERSION, transfer_socket

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"


def put(sock, attempt_id, rel, data):
    sock.send_multipart([VERSION, b"PUT_OUTPUT", json.dumps({"attempt_id": attempt_id, "path": rel, "offset": 0,
                                                              "size": len(data)}).encode(), data])
    assert sock.poll(10000)
    return sock.recv_multipart()[1]


def complete(farm, worker, sock, n):
    """The stand-in renders ``n`` jobs: their frame files go up, then DONE."""
    for _ in range(n):
        task = worker.take()
        stem = f"{task.job_id:010d}-0000-cam"
        for rel, data in ((f"images/{stem}.png", b"png"), (f"annotations/{stem}-ann.json", b"{}")):
            assert put(sock, task.attempt_id, rel, data) == b"ACK"
        worker.finish(task)


def done_lines(out):
    """The job ids of the done lines, one entry per line (a torn line, as a crash leaves it, is no line)."""
    ids = []
    for line in (out / "jobs.jsonl").read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record["status"] == "done":
            ids.append(record["id"])
    return sorted(ids)


def test_a_damaged_state_is_detected_and_recovered(tmp_path):
    out = tmp_path / "out"
    farm = Farm(tmp_path, workers=0)
    farm.submit(TINY, 4, out)
    w = StandIn(f"tcp://127.0.0.1:{farm.port}", "w")
    sock = transfer_socket(zmq.Context.instance(), f"tcp://127.0.0.1:{farm.port + 3}", identity=b"w")
    complete(farm, w, sock, 2)
    farm.wait(lambda s: s["jobs"]["done"] == 2)
    farm.stop()
    w.close()
    state = tmp_path / "state" / "farm.sqlite"
    with sqlite3.connect(state) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name='jobs'").fetchone()[0]
    with open(state, "r+b") as handle:  # the jobs table's page turns to garbage
        handle.seek((root - 1) * page_size)
        handle.write(b"\xa5" * page_size)
    start = time.monotonic()
    farm.coordinator = farm.start_coordinator()
    farm.coordinator.wait(timeout=60)
    assert farm.coordinator.returncode != 0 and time.monotonic() - start < 60
    failed = subprocess.run(farm.coordinator.args, capture_output=True, text=True, timeout=60)
    assert "damaged" in failed.stderr and "--recover" in failed.stderr and "Traceback" not in failed.stderr
    farm.coordinator_args += ("--recover",)
    farm.coordinator = farm.start_coordinator()
    try:
        status = farm.wait(lambda s: True, timeout=60)
        assert status["count"] == 4 and status["jobs"]["done"] == 2 and status["jobs"]["queued"] == 2, status
        assert list(tmp_path.glob("state/farm.sqlite.damaged-*"))
        w2 = StandIn(f"tcp://127.0.0.1:{farm.port}", "w")
        complete(farm, w2, sock, 2)
        farm.wait(lambda s: s["jobs"]["done"] == 4)
        assert done_lines(out) == [0, 1, 2, 3]
    finally:
        sock.close()
        farm.stop()


def test_jobs_jsonl_has_one_line_per_job_ever(tmp_path):
    out = tmp_path / "out"
    farm = Farm(tmp_path, workers=0)
    try:
        farm.submit(TINY, 6, out)
        w = StandIn(f"tcp://127.0.0.1:{farm.port}", "w")
        sock = transfer_socket(zmq.Context.instance(), f"tcp://127.0.0.1:{farm.port + 3}", identity=b"w")
        complete(farm, w, sock, 2)
        farm.wait(lambda s: s["jobs"]["done"] == 2)
        (out / "jobs.jsonl").unlink()  # deleted mid-run
        complete(farm, w, sock, 1)
        farm.wait(lambda s: s["jobs"]["done"] == 3)
        deadline = time.time() + 10
        while time.time() < deadline and (not (out / "jobs.jsonl").exists() or done_lines(out) != [0, 1, 2]):
            time.sleep(0.2)
        assert done_lines(out) == [0, 1, 2]  # the lines of the jobs done before the deletion are back
        farm.coordinator.kill()
        farm.coordinator.wait()
        lines = (out / "jobs.jsonl").read_text().splitlines()
        (out / "jobs.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:7])  # a torn last line
        farm.coordinator = farm.start_coordinator()  # the stand-in's socket reconnects by itself
        farm.wait(lambda s: True)
        complete(farm, w, sock, 3)
        farm.wait(lambda s: s["jobs"]["done"] == 6)
        assert done_lines(out) == [0, 1, 2, 3, 4, 5]  # each once
        sock.close()
    finally:
        farm.stop()


def test_a_full_state_disk_stops_dispatch_and_resumes(tmp_path):
    disk = SmallDisk(tmp_path / "statedisk", size="3m")
    farm = Farm(tmp_path, workers=0, state=tmp_path / "statedisk" / "state", coordinator_args=("--min-free-mb", 1))
    try:
        farm.ready()
        farm.submit(TINY, 20, tmp_path / "out")
        w = StandIn(f"tcp://127.0.0.1:{farm.port}", "w")
        task = w.take()
        w.render(task)
        farm.wait(lambda s: s["jobs"]["done"] == 1)  # committed before the disk fills
        disk.fill()
        body = {"batch_id": "big", "recipe": TINY.read_text(), "recipe_dir": str(TINY.parent),
                "out": str(tmp_path / "big"), "count": 50_000}
        reply = raw_request(farm.client.endpoint, "SUBMIT", body, timeout=30)
        assert not reply["ok"] and "cannot be written" in reply["error"], reply
        status = farm.client.status("batch")
        assert "cannot be written" in status["reason"] and farm.client.status()["state_error"]
        assert w.take() is None  # dispatch stopped
        assert farm.coordinator.poll() is None
        disk.free()
        deadline = time.time() + 30
        task = None
        while task is None and time.time() < deadline:
            task = w.take()
        assert task is not None and task.batch_id == "batch"  # dispatch resumed
        w.render(task)
        status = farm.wait(lambda s: s["jobs"]["done"] == 2)
        assert status["reason"].startswith("running") and not farm.client.status()["state_error"]
    finally:
        farm.stop()
        disk.close()
