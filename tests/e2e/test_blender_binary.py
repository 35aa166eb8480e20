"""The same code inside a Blender installation (`blender -b --python ...`). Runs only where a `blender`
executable is on PATH (with synthfarm's dependencies in its Python); the bpy-module paths of the same
scripts are tested everywhere."""
import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import zmq

from synthfarm.farm.client import FarmClient
from synthfarm.farm.coordinator import Coordinator
from synthfarm.farm.worker import Worker

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"
BLENDER = shutil.which("blender")
pytestmark = pytest.mark.skipif(BLENDER is None, reason="no blender executable on this machine")


def test_background_render_script(tmp_path):
    out = subprocess.run([BLENDER, "-b", "--factory-startup", "--python", str(ROOT / "scripts" / "render.py"), "--",
                          "--recipe", str(TINY), "--jobs", "1", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    ann = json.loads((tmp_path / "annotations" / "0000000000-0000-cam-ann.json").read_text())
    assert {o["class"] for o in ann["objects"]} == {"box", "ball"}


def test_worker_with_a_blender_child(tmp_path):
    context = zmq.Context()
    coord = Coordinator(tmp_path / "state", *["tcp://127.0.0.1:0"] * 4, context=context, heartbeat=0.3,
                        out_root=tmp_path, shared_roots=(TINY.parent,))
    worker = Worker(coord.workers_endpoint, "blender-worker", blender=BLENDER, context=context)
    threads = [threading.Thread(target=coord.serve, daemon=True), threading.Thread(target=worker.run, daemon=True)]
    for t in threads:
        t.start()
    try:
        client = FarmClient(coord.clients_endpoint, timeout=10, context=context)
        client.submit(batch_id="b", recipe=TINY.read_text(), recipe_dir=str(TINY.parent), out=str(tmp_path / "out"),
                      count=2)
        for _ in range(600):
            if client.status("b")["jobs"]["done"] == 2:
                break
            threading.Event().wait(0.5)
        assert client.status("b")["jobs"]["done"] == 2
    finally:
        worker.stop_event.set()
        threads[1].join(60)
        coord.stop_event.set()
        threads[0].join(10)
        context.destroy(linger=0)
