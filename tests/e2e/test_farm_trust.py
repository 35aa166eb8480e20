"""Trust boundaries, with real processes on loopback (issue 14, finding 5): a worker puts only the files of the
attempt it holds; links are never followed when committing or serving; worker keys cannot read datasets;
reading a shared file system is the coordinator's choice, under the roots it names."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from farm_procs import Farm, StandIn, raw_request
from synthfarm.farm.client import FarmClient
from synthfarm.farm.transfer import VERSION, transfer_socket

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"
STEM = "{:010d}-0000-cam"


@pytest.fixture()
def farm(tmp_path):
    farm = Farm(tmp_path, workers=0)
    yield farm
    farm.stop()


def ask(sock, kind, header, data=b"", timeout=10):
    sock.send_multipart([VERSION, kind.encode(), json.dumps(header).encode(), data])
    assert sock.poll(timeout * 1000), f"no answer to {kind}"
    frames = sock.recv_multipart()
    return frames[1].decode(), json.loads(frames[2]), frames[3]


def put(sock, attempt_id, rel, data=b"x"):
    return ask(sock, "PUT_OUTPUT", {"attempt_id": attempt_id, "path": rel, "offset": 0, "size": len(data)}, data)[0]


def frame_files(job):
    stem = STEM.format(job)
    return {f"images/{stem}.png": b"png", f"annotations/{stem}-ann.json": b'{"objects": []}'}


def deliver(sock, task):
    for rel, data in frame_files(task.job_id).items():
        assert put(sock, task.attempt_id, rel, data) == "ACK", rel


def test_a_worker_puts_only_the_files_of_its_own_attempt(farm, tmp_path):
    out = tmp_path / "out"
    farm.submit(TINY, 3, out)
    workers = f"tcp://127.0.0.1:{farm.port}"
    a, b = StandIn(workers, "a"), StandIn(workers, "b")
    mine, theirs = a.take(), b.take()
    sock = transfer_socket(zmq.Context.instance(), f"tcp://127.0.0.1:{farm.port + 3}", identity=b"a")
    for rel in (f"images/{STEM.format(2)}.png", f"annotations/{STEM.format(999999)}-ann.json", "dataset.yaml",
                f"images/{STEM.format(mine.job_id)}.png/../../x.png"):
        assert put(sock, mine.attempt_id, rel) == "ERROR", rel
    assert put(sock, theirs.attempt_id, f"images/{STEM.format(theirs.job_id)}.png") == "ERROR"  # b's attempt
    deliver(sock, mine)
    a.finish(mine)
    # on a shared file system a worker writes its staging folder itself: files of another job are refused there
    staging = out / ".staging" / theirs.attempt_id
    for rel, data in {**frame_files(theirs.job_id), **frame_files(2)}.items():
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).write_bytes(data)
    b.finish(theirs)
    status = farm.wait(lambda s: s["jobs"]["done"] == 1 and s["jobs"]["running"] == 0, timeout=30)
    assert sorted(p.name for p in (out / "annotations").iterdir()) == [f"{STEM.format(mine.job_id)}-ann.json"]
    assert status["jobs"]["queued"] == 2
    sock.close()


def test_links_are_never_followed(farm, tmp_path):
    out = tmp_path / "out"
    secret = tmp_path / "secret.txt"
    secret.write_text("the system's password hashes")
    farm.submit(TINY, 3, out)
    workers = f"tcp://127.0.0.1:{farm.port}"
    w = StandIn(workers, "w")
    sock = transfer_socket(zmq.Context.instance(), f"tcp://127.0.0.1:{farm.port + 3}", identity=b"w")
    task = w.take()
    deliver(sock, task)
    w.finish(task)
    farm.wait(lambda s: s["jobs"]["done"] == 1)
    # serving: a link in the dataset is neither listed nor served
    (out / "images" / "leak.png").symlink_to(secret)
    (out / "etc").symlink_to(tmp_path)
    client = FarmClient(f"tcp://127.0.0.1:{farm.port + 1}", timeout=10)
    client.download("batch", tmp_path / "copy")
    copied = {p.relative_to(tmp_path / "copy").as_posix() for p in (tmp_path / "copy").rglob("*") if p.is_file()}
    assert "images/leak.png" not in copied and not any(p.startswith("etc") for p in copied), copied
    reply = ask(sock, "GET_OUTPUT", {"batch_id": "batch", "path": "images/leak.png", "offset": 0})
    assert reply[0] == "ERROR" and b"password" not in reply[2]
    assert ask(sock, "GET_OUTPUT", {"batch_id": "batch", "path": "etc/secret.txt", "offset": 0})[0] == "ERROR"
    # committing: a staged link, and a dataset folder replaced by a link, are refused
    task = w.take()
    staging = out / ".staging" / task.attempt_id
    (staging / "annotations").mkdir(parents=True)
    (staging / "annotations" / f"{STEM.format(task.job_id)}-ann.json").symlink_to(secret)
    w.finish(task)
    farm.wait(lambda s: s["jobs"]["running"] == 0)
    assert not (out / "annotations" / f"{STEM.format(task.job_id)}-ann.json").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "images").rename(tmp_path / "images-moved")
    (out / "images").symlink_to(elsewhere)
    task = w.take()
    deliver(sock, task)
    w.finish(task)
    status = farm.wait(lambda s: s["jobs"]["running"] == 0)
    assert list(elsewhere.iterdir()) == []
    assert status["jobs"]["done"] == 1
    sock.close()



def test_no_commit_writes_through_a_link_it_did_not_check(farm, tmp_path):
    """Every dataset folder a commit writes into is checked as that attempt is committed, the models folder too
    (a staged model went through a linked models/ before), and a staging folder that is itself a link is refused."""
    out = tmp_path / "out"
    farm.submit(TINY, 3, out)
    w = StandIn(f"tcp://127.0.0.1:{farm.port}", "w")
    task = w.take()
    staging = out / ".staging" / task.attempt_id
    for rel, data in {**frame_files(task.job_id), "models/part.ply": b"ply"}.items():
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).write_bytes(data)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "models").symlink_to(elsewhere)
    w.finish(task)
    status = farm.wait(lambda s: s["jobs"]["running"] == 0)
    assert list(elsewhere.iterdir()) == [] and status["jobs"]["done"] == 0
    assert not (out / "annotations" / f"{STEM.format(task.job_id)}-ann.json").exists()
    (out / "models").unlink()
    task = w.take()  # a staging folder that is a link to files elsewhere: nothing is taken from it
    outside = tmp_path / "outside"
    for rel, data in frame_files(task.job_id).items():
        (outside / rel).parent.mkdir(parents=True, exist_ok=True)
        (outside / rel).write_bytes(data)
    (out / ".staging").mkdir(exist_ok=True)
    (out / ".staging" / task.attempt_id).symlink_to(outside)
    w.finish(task)
    status = farm.wait(lambda s: s["jobs"]["running"] == 0)
    assert status["jobs"]["done"] == 0 and not (out / "annotations" / f"{STEM.format(task.job_id)}-ann.json").exists()
    assert sorted(p.relative_to(outside).as_posix() for p in outside.rglob("*") if p.is_file()) == sorted(
        frame_files(task.job_id))
    assert not os.path.lexists(out / ".staging" / task.attempt_id)  # the link is gone, what it named is not
    w.close()

def test_worker_keys_cannot_read_batches(tmp_path):
    keys = tmp_path / "keys"
    subprocess.run([sys.executable, "-m", "synthfarm.cli", "keys", "init", str(keys)], check=True,
                   capture_output=True)
    farm = Farm(tmp_path, workers=0, coordinator_args=("--keys", keys))
    try:
        client = FarmClient(f"tcp://127.0.0.1:{farm.port + 1}", timeout=10, keys=keys)
        deadline = time.time() + 30
        while True:
            try:
                client.submit(batch_id="batch", recipe=TINY.read_text(), recipe_dir=str(TINY.parent),
                              out=str(tmp_path / "out"), count=1)
                break
            except Exception:
                assert time.time() < deadline
                time.sleep(0.3)
        context = zmq.Context.instance()
        endpoint = f"tcp://127.0.0.1:{farm.port + 3}"
        as_worker = transfer_socket(context, endpoint, keys, "worker", identity=b"w")
        as_client = transfer_socket(context, endpoint, keys, "client")
        kind, header, _ = ask(as_worker, "LIST_OUTPUT", {"batch_id": "batch"})
        assert kind == "ERROR" and "worker keys" in header["error"]
        assert ask(as_worker, "GET_OUTPUT", {"batch_id": "batch", "path": "recipe.yaml", "offset": 0})[0] == "ERROR"
        blob = {"hash": "0" * 64, "offset": 0, "size": 1}
        assert ask(as_worker, "PUT_BLOB", blob, b"x")[0] == "ERROR"
        kind, header, _ = ask(as_client, "LIST_OUTPUT", {"batch_id": "batch"})
        assert kind == "ACK" and ["recipe.yaml", len(TINY.read_bytes())] in header["files"]
        as_worker.close()
        as_client.close()
    finally:
        farm.stop()


def test_reading_a_shared_file_system_is_the_coordinators_choice(farm, tmp_path, tmp_path_factory):
    url = f"tcp://127.0.0.1:{farm.port + 1}"
    farm.ready()
    elsewhere = tmp_path_factory.mktemp("recipes")  # under neither shared root (the checkout, the farm's folder)
    (elsewhere / "tiny.yaml").write_text(TINY.read_text())
    body = {"batch_id": "b", "recipe": TINY.read_text(), "recipe_dir": str(elsewhere), "out": "x", "count": 1}
    reply = raw_request(url, "SUBMIT", body)
    assert not reply["ok"] and "shared file system only under" in reply["error"], reply
    errors = []
    for base in ("/etc/passwd", "/etc/no-such-file"):  # the coordinator says nothing of what exists outside
        recipe = TINY.read_text().replace("version: 1", f"version: 1\nscene: {{base: {base}}}")
        reply = raw_request(url, "SUBMIT", {**body, "recipe": recipe, "recipe_dir": str(TINY.parent)})
        assert not reply["ok"] and "leaves the job's folder" in reply["error"], reply
        errors.append(reply["error"].replace(base, "PATH"))
    assert errors[0] == errors[1]
    assert not os.path.exists(tmp_path / "x")
