"""Worker capabilities route batches (stand-in workers that report a GPU or none, on a real coordinator), and
each attempt keeps the end of its Blender log (a real worker whose job fails), shown by `synthfarm logs`."""
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import zmq

from farm_procs import Farm
from synthfarm.farm import protocol as p
from synthfarm.farm.capabilities import GIB, Capabilities, Requirements
from synthfarm.farm.client import FarmClient
from synthfarm.farm.coordinator import Coordinator

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"
A100 = Capabilities(device="GPU", gpu_model="NVIDIA A100-SXM4-80GB", gpu_count=1, vram_bytes=80 * GIB,
                    memory_bytes=256 * GIB)
CPU = Capabilities(device="CPU", memory_bytes=32 * GIB)


def stand_in(context, endpoint, name, caps):
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.ROUTING_ID, name.encode())
    sock.connect(endpoint)
    sock.send_multipart(p.encode("HELLO", p.Hello(worker_id=name, capabilities=caps)))
    assert sock.poll(10_000) and p.decode(sock.recv_multipart())[0] == "WELCOME"
    return sock


def ask(sock, name):
    sock.send_multipart(p.encode("REQUEST", p.Request(worker_id=name)))
    assert sock.poll(10_000)
    return p.decode(sock.recv_multipart())


def test_batches_go_only_to_workers_that_meet_their_requirements(tmp_path):
    context = zmq.Context()
    coord = Coordinator(tmp_path / "state", *["tcp://127.0.0.1:0"] * 4, context=context, out_root=tmp_path,
                        shared_roots=(TINY.parent,))
    thread = threading.Thread(target=coord.serve, daemon=True)
    thread.start()
    try:
        client = FarmClient(coord.clients_endpoint, context=context)
        cpu = stand_in(context, coord.workers_endpoint, "cpu-worker", CPU)
        for batch_id, requires in (("big-gpu", Requirements(gpu=True, min_vram_gb=40)), ("anywhere", Requirements())):
            client.submit(batch_id=batch_id, recipe=TINY.read_text(), recipe_dir=str(TINY.parent), out=batch_id,
                          count=2, requires=requires)
        # only a CPU worker: the GPU batch (first in line) waits and says why, the other one runs
        status = client.status("big-gpu")
        assert "waiting for a worker with a GPU" in status["waiting_for"], status
        kind, task = ask(cpu, "cpu-worker")
        assert kind == "TASK" and task.batch_id == "anywhere"
        gpu = stand_in(context, coord.workers_endpoint, "gpu-worker", A100)
        kind, task = ask(gpu, "gpu-worker")
        assert kind == "TASK" and task.batch_id == "big-gpu"
        assert "waiting_for" not in client.status("big-gpu")
        small = stand_in(context, coord.workers_endpoint, "small-gpu", A100.model_copy(update={"vram_bytes": 24 * GIB}))
        kind, task = ask(small, "small-gpu")  # 24 GB is not enough for big-gpu: it gets the other batch
        assert kind == "TASK" and task.batch_id == "anywhere"
        workers = {w["id"]: w for w in client.workers()}
        assert workers["gpu-worker"]["gpu_model"] == "NVIDIA A100-SXM4-80GB"
        assert workers["gpu-worker"]["vram_bytes"] == 80 * GIB and workers["gpu-worker"]["current_batch"] == "big-gpu"
        assert workers["cpu-worker"]["device"] == "CPU"
        for sock in (cpu, gpu, small):
            sock.close()
        client.close()
    finally:
        coord.stop_event.set()
        thread.join(timeout=10)
        context.term()


def test_submit_refuses_an_unknown_requirement():
    run = subprocess.run([sys.executable, "-m", "synthfarm.cli", "submit", TINY, "--jobs", "1", "--out", "x",
                          "--require", "vram=24"], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "unknown capability 'vram'" in run.stderr


@pytest.fixture()
def broken_recipe(tmp_path):
    """A recipe whose base scene is not a .blend: it passes submit (the file exists) and fails in Blender."""
    blend = TINY.parent / f".fleet-test-{tmp_path.name}.blend"
    blend.write_bytes(b"BLENDER-v500 but then nothing a reader can use" * 10)
    recipe = TINY.parent / f".fleet-test-{tmp_path.name}.yaml"
    recipe.write_text(TINY.read_text().replace("name: tiny\n", f"name: tiny\nscene: {{base: {blend.name}}}\n"))
    yield recipe
    recipe.unlink(missing_ok=True)
    blend.unlink(missing_ok=True)


def test_logs_of_an_attempt_that_failed(broken_recipe, tmp_path):
    farm = Farm(tmp_path, workers=1)
    try:
        farm.submit(broken_recipe, 1, tmp_path / "out")
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            attempts = farm.client.logs("batch", 0)
            if any(a["status"] == "failed" for a in attempts):
                break
            time.sleep(0.5)
        failed = next(a for a in farm.client.logs("batch", 0) if a["status"] == "failed")
        assert failed["worker_id"] == "w0" and failed["error"]
        assert "failed" in failed["log"] and len(failed["log"].encode()) <= p.MAX_LOG
        printed = subprocess.run([sys.executable, "-m", "synthfarm.cli", "logs", "batch", "0", "--connect",
                                  f"tcp://127.0.0.1:{farm.port + 1}"], capture_output=True, text=True, timeout=60)
        assert printed.returncode == 0
        assert f"== attempt {failed['id']} on w0: failed" in printed.stdout
        assert failed["log"].strip().splitlines()[-1] in printed.stdout
        job = farm.client.request("JOBS", p.JobsPage(batch_id="batch"))["jobs"][0]
        assert job["attempts"] >= 1 and job["worker"] == "w0" and job["log_tail"]
        (worker,) = farm.client.workers()
        assert worker["device"] == "CPU" and worker["memory_bytes"] > GIB
    finally:
        farm.stop()
