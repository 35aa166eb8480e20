"""Leftovers and key mistakes, with real processes on loopback (issue 14, finding 8): abandoned uploads are
deleted, a peer's unfinished uploads are bounded, a killed Blender child leaves no temp folder, and a missing
or wrong key is said plainly and at once."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import yaml
import zmq

from farm_procs import Farm
from synthfarm.farm.client import FarmError
from synthfarm.farm.transfer import CHUNK, VERSION, transfer_socket

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"


def ask(sock, kind, header, data=b""):
    sock.send_multipart([VERSION, kind.encode(), json.dumps(header).encode(), data])
    assert sock.poll(10000), f"no answer to {kind}"
    frames = sock.recv_multipart()
    return frames[1].decode(), json.loads(frames[2])


def test_abandoned_uploads_are_deleted_and_bounded(tmp_path):
    farm = Farm(tmp_path, workers=0, coordinator_args=("--upload-idle", 2))
    try:
        farm.ready()
        sock = transfer_socket(zmq.Context.instance(), f"tcp://127.0.0.1:{farm.port + 3}")
        kinds = [ask(sock, "PUT_BLOB", {"hash": f"{i:064x}", "offset": 0, "size": 2 * CHUNK}, b"x" * CHUNK)[0]
                 for i in range(70)]  # 70 files started, none finished
        assert kinds[:64] == ["ACK"] * 64 and set(kinds[64:]) == {"ERROR"}
        blobs = tmp_path / "state" / "blobs"
        assert len(list(blobs.glob(".put-*"))) == 64
        deadline = time.time() + 30
        while time.time() < deadline and list(blobs.glob(".put-*")):
            time.sleep(0.5)
        assert not list(blobs.glob(".put-*"))  # idle for 2 s: deleted (1 MB each here; 480 MB were seen)
        assert ask(sock, "PUT_BLOB", {"hash": "f" * 64, "offset": 0, "size": 2 * CHUNK}, b"x" * CHUNK)[0] == "ACK"
        sock.close()
    finally:
        farm.stop()


def test_a_killed_blender_child_leaves_no_temp_folder(tmp_path):
    temp = tmp_path / "temp"
    temp.mkdir()
    farm = Farm(tmp_path, workers=0)
    env = {**os.environ, "TMPDIR": str(temp)}
    try:
        farm.workers.append(subprocess.Popen(
            [sys.executable, "-m", "synthfarm.cli", "worker", "--connect", f"tcp://127.0.0.1:{farm.port}",
             "--name", "w", "--work-dir", tmp_path / "work"], env=env, stdout=subprocess.DEVNULL))
        farm.submit(TINY, 2, tmp_path / "out")
        farm.wait(lambda s: s["jobs"]["running"] == 1, timeout=120)  # the child is up and rendering
        first = psutil.Process(farm.workers[0].pid).children()[0]
        assert len(list(temp.glob("synthfarm-child-*"))) == 1
        first.kill()  # as a crash would
        farm.wait(lambda s: s["jobs"]["done"] == 2, timeout=240)
        assert len(list(temp.glob("synthfarm-child-*"))) == 1  # the new child's only
        farm.workers[0].kill()  # the supervisor too: its child exits and removes its own folder
        deadline = time.time() + 30
        while time.time() < deadline and list(temp.glob("synthfarm-child-*")):
            time.sleep(0.2)
        assert not list(temp.glob("synthfarm-child-*"))
    finally:
        farm.stop()


def test_a_blender_child_mid_render_exits_at_once_when_its_worker_is_killed(tmp_path):
    """An orphan child used to render on (and wait, idle, for tasks that never came: 42 minutes once): it noticed
    its supervisor's death only when it sent a message. Now it reads the end of a pipe the supervisor held."""
    data = yaml.safe_load(TINY.read_text())
    data["sensors"][0].update(resolution=[640, 480], samples=65536)  # minutes of rendering
    recipe = tmp_path / "long.yaml"
    recipe.write_text(yaml.safe_dump(data))
    farm = Farm(tmp_path, workers=1)
    child = None
    try:
        farm.submit(recipe, 1, tmp_path / "out")
        farm.wait(lambda s: s["jobs"]["running"] == 1, timeout=120)  # the child has the task
        time.sleep(3)  # into the render
        (child,) = psutil.Process(farm.workers[0].pid).children()
        farm.workers[0].kill()  # as the OOM killer would
        farm.workers[0].wait(30)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and gone(child) is False:
            time.sleep(0.1)
        assert gone(child), f"the Blender child {child.pid} still runs after its worker was killed"
    finally:
        if child is not None and not gone(child):
            child.kill()
        farm.stop()


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE  # ended; waiting for whoever adopted it to reap it
    except psutil.NoSuchProcess:
        return True


def test_missing_or_wrong_keys_are_said_plainly(tmp_path):
    keys, other, partial = tmp_path / "keys", tmp_path / "other", tmp_path / "partial"
    for folder in (keys, other):
        subprocess.run([sys.executable, "-m", "synthfarm.cli", "keys", "init", str(folder)], check=True,
                       capture_output=True)
    partial.mkdir()
    shutil.copy(keys / "coordinator.key", partial)  # a worker given only the coordinator's public key
    farm = Farm(tmp_path, workers=0, coordinator_args=("--keys", keys))
    try:
        worker = subprocess.run([sys.executable, "-m", "synthfarm.cli", "worker", "--connect",
                                 f"tcp://127.0.0.1:{farm.port}", "--keys", partial],
                                capture_output=True, text=True, timeout=60)
        assert worker.returncode != 0 and "Traceback" not in worker.stderr, worker.stderr
        assert "worker.key_secret not found" in worker.stderr and "synthfarm keys init" in worker.stderr
        deadline = time.time() + 120
        while time.time() < deadline:  # until the coordinator is up: a keyless status is refused, not unanswered
            try:
                farm.client.status()
            except FarmError as err:
                if "refused" in str(err):
                    break
        for folder, why in ((other, "is not its key, or it uses no keys"), (None, "it uses keys and we do not")):
            start = time.monotonic()
            status = subprocess.run([sys.executable, "-m", "synthfarm.cli", "status", "--connect",
                                     f"tcp://127.0.0.1:{farm.port + 1}", *(("--keys", folder) if folder else ())],
                                    capture_output=True, text=True, timeout=60)
            assert status.returncode != 0 and why in status.stderr, status.stderr
            assert time.monotonic() - start < 8  # not the 10 s timeout
    finally:
        farm.stop()
