"""Slow versus dead, with real processes on loopback (issue 14, finding 3): a hung attempt ends in a failed job
instead of an endless loop, a recipe may allow long frames, a worker lost while the coordinator was down is
requeued after lost-after, and an upload cut by a coordinator restart resumes."""
import os
import threading
import time
from pathlib import Path

import yaml

from farm_procs import Farm, StandIn

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"


def endpoint(farm):
    return f"tcp://127.0.0.1:{farm.port}"


def beat_until_cancelled(worker, task, seconds):
    """Heartbeat for ``task`` (never any progress) until the coordinator cancels it; the seconds it took, or None."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        worker.beat(task.attempt_id)
        if worker.sock.poll(200):
            kind, msg = worker.p.decode(worker.sock.recv_multipart())
            if kind == "CANCEL" and msg.attempt_id == task.attempt_id:
                return time.monotonic() - start
    return None


def test_a_hung_job_fails_after_its_attempts_instead_of_looping(tmp_path):
    farm = Farm(tmp_path, workers=0, coordinator_args=("--hang-after", 1.5))
    try:
        farm.submit(TINY, 1, tmp_path / "out")
        w = StandIn(endpoint(farm), "slow")
        for _ in range(3):
            task = w.take()
            assert task is not None and task.job_id == 0
            assert beat_until_cancelled(w, task, 20) is not None
        status = farm.wait(lambda s: s["jobs"]["failed"] == 1)
        assert "no frame finished in 2 s" in status["errors"][0]["error"]
        assert "farm.hang_after" in status["errors"][0]["error"]
        assert w.take() is None  # nothing left: no endless loop of attempts
    finally:
        farm.stop()


def test_a_recipe_allows_its_long_frames(tmp_path):
    data = yaml.safe_load(TINY.read_text())
    data["farm"] = {"hang_after": 60}
    recipe = tmp_path / "long-frames.yaml"  # never in the checkout
    recipe.write_text(yaml.safe_dump(data))
    farm = Farm(tmp_path, workers=0, coordinator_args=("--hang-after", 1.0))
    try:
        farm.submit(recipe, 1, tmp_path / "out")
        w = StandIn(endpoint(farm), "slow")
        task = w.take()
        assert beat_until_cancelled(w, task, 5) is None  # 5 s on one frame: alive, not hung
        w.render(task)
        assert farm.wait(lambda s: s["jobs"]["done"] == 1)["jobs"]["failed"] == 0
    finally:
        farm.stop()


def test_a_worker_lost_while_the_coordinator_was_down_is_requeued_after_lost_after(tmp_path):
    farm = Farm(tmp_path, workers=0)  # --lost-after 3, --hang-after 600
    try:
        farm.submit(TINY, 1, tmp_path / "out")
        w = StandIn(endpoint(farm), "doomed")
        assert w.take() is not None
        farm.coordinator.kill()
        farm.coordinator.wait()
        w.close()  # the worker dies while the coordinator is down
        farm.coordinator = farm.start_coordinator()
        start = time.time()
        farm.wait(lambda s: s["jobs"]["queued"] == 1 and s["jobs"]["running"] == 0, timeout=30)
        assert time.time() - start < 20
    finally:
        farm.stop()


def test_an_upload_resumes_across_a_coordinator_restart(tmp_path):
    from synthfarm.farm.transfer import transfer_socket, upload_outputs

    farm = Farm(tmp_path, workers=0, coordinator_args=("--lost-after", 20))
    try:
        farm.submit(TINY, 1, tmp_path / "out")
        w = StandIn(endpoint(farm), "uploader")
        task = w.take()
        staging = tmp_path / "local"
        files = {"images/0000000000-0000-cam.png": os.urandom(40 * 1024 * 1024),
                 "annotations/0000000000-0000-cam-ann.json": b'{"objects": []}'}
        for rel, data in files.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            (staging / rel).write_bytes(data)
        socks, chunks, errors = [], [0], []

        def connect(fresh):
            socks.append(transfer_socket(w.sock.context, f"tcp://127.0.0.1:{farm.port + 3}", identity=b"uploader"))
            return socks[-1]

        def tick():
            chunks[0] += 1
            if chunks[0] % 8 == 0:
                w.beat(task.attempt_id)

        def upload():
            try:
                upload_outputs(connect, staging, task.attempt_id, sorted(files), tick=tick, timeout=2.0, patience=120)
            except Exception as err:  # reported below
                errors.append(err)

        thread = threading.Thread(target=upload)
        thread.start()
        deadline = time.time() + 60
        while chunks[0] < 40 and time.time() < deadline:
            time.sleep(0.01)
        farm.coordinator.kill()  # mid-upload
        farm.coordinator.wait()
        time.sleep(1.0)
        farm.coordinator = farm.start_coordinator()
        thread.join(150)
        assert not thread.is_alive() and not errors, errors
        assert len(socks) > 1  # it did reconnect
        staged = tmp_path / "out" / ".staging" / task.attempt_id
        for rel, data in files.items():
            assert (staged / rel).read_bytes() == data
        w.finish(task)
        status = farm.wait(lambda s: s["jobs"]["done"] == 1)
        assert status["jobs"]["failed"] == 0
        assert (tmp_path / "out" / "images" / "0000000000-0000-cam.png").read_bytes() == files[
            "images/0000000000-0000-cam.png"]
        for sock in socks:
            sock.close(linger=0)
    finally:
        farm.stop()
