"""The Farm sub-panel against a real coordinator on loopback (and a real worker with a Blender child)."""
from __future__ import annotations

import time
from pathlib import Path

import bpy
import pytest
import zmq

import synthfarm
from synthfarm.addon.engine.scene import CLASS_PROP
from synthfarm.farm import ui as farm_ui
from synthfarm.farm.embedded import EmbeddedFarm

from layout_recorder import draw

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests/data/tiny.yaml"


@pytest.fixture
def scene(tmp_path):
    bpy.ops.wm.read_factory_settings(use_empty=False)
    synthfarm.register()
    scene = bpy.context.scene
    bpy.ops.synthfarm.import_recipe(filepath=str(TINY))
    scene.objects["Cube"][CLASS_PROP] = "user_cube"  # the user's own object must reach the workers
    scene.objects["Cube"].scale = (0.2, 0.2, 0.2)
    scene.synthfarm_farm.out = str(tmp_path / "farm_out")
    scene.synthfarm_farm.jobs = 2
    scene.synthfarm_farm.preview = True
    prefs = bpy.context.preferences.system
    was = prefs.use_online_access
    prefs.use_online_access = True
    yield scene
    prefs.use_online_access = was
    synthfarm.unregister()


def test_offline_opens_no_socket(scene, monkeypatch):
    bpy.context.preferences.system.use_online_access = False
    monkeypatch.setattr(zmq.Context, "socket", lambda *a, **k: pytest.fail("a socket was opened while offline"))
    with pytest.raises(RuntimeError, match="poll"):
        bpy.ops.synthfarm.farm_submit()
    scene.synthfarm_farm.batch_id = "b1"
    assert farm_ui.poll_status(scene) is None
    layout = draw(farm_ui.VIEW3D_PT_synthfarm_farm)
    assert "Online access is off" in layout.labels()


def test_submit_follow_and_cancel(scene, coordinator):
    farm = scene.synthfarm_farm
    farm.address = coordinator.clients_endpoint
    idle = draw(farm_ui.VIEW3D_PT_synthfarm_farm)
    assert "synthfarm.farm_submit" in idle.operators() and "synthfarm.farm_cancel" not in idle.operators()
    assert bpy.ops.synthfarm.farm_submit() == {"FINISHED"}
    assert farm.batch_id and farm.state == "active" and farm.counts.startswith("2 queued")
    running = draw(farm_ui.VIEW3D_PT_synthfarm_farm)
    assert any(farm.batch_id in text for text in running.labels())
    assert {"synthfarm.farm_cancel", "synthfarm.farm_refresh", "synthfarm.farm_download"} <= set(running.operators())
    progress = [e for e in running.log if e[0] == "progress"]  # a progress bar, not an editable slider
    assert progress and progress[0][2] == farm.counts and "progress" not in running.props(farm)
    assert farm_ui.poll_status(scene) == farm_ui.POLL_SECONDS  # still queued: keep polling
    assert bpy.ops.synthfarm.farm_cancel() == {"FINISHED"}
    assert farm.state == "cancelled" and farm_ui.poll_status(scene) is None


def test_unreachable_coordinator_is_reported(scene):
    scene.synthfarm_farm.address = "tcp://127.0.0.1:9"  # nothing listens there
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="no answer from the coordinator"):
        bpy.ops.synthfarm.farm_submit()
    assert time.monotonic() - start < 10
    assert "no answer" in scene.synthfarm_farm.message
    assert any("no answer" in t for t in draw(farm_ui.VIEW3D_PT_synthfarm_farm).labels())


def test_submitted_scene_renders_on_a_worker(scene, tmp_path):
    with EmbeddedFarm(tmp_path / "farm", workers=1, device="cpu") as farm_proc:
        farm = scene.synthfarm_farm
        farm.address = farm_proc.coordinator.clients_endpoint
        assert bpy.ops.synthfarm.farm_submit() == {"FINISHED"}
        deadline = time.monotonic() + 180
        while farm_ui.poll_status(scene) is not None:
            assert time.monotonic() < deadline, farm.counts
            time.sleep(0.5)
        assert farm.counts == "0 queued, 0 running, 2 done, 0 failed", farm.message
        farm.download_to = str(tmp_path / "copy")
        assert bpy.ops.synthfarm.farm_download() == {"FINISHED"}
    annotations = sorted((tmp_path / "copy" / "annotations").glob("*.json"))
    assert len(annotations) == 2
    import json

    classes = {o["class"] for a in annotations for o in json.loads(a.read_text())["objects"]}
    assert "user_cube" in classes


def test_the_default_dataset_goes_under_the_coordinators_root(scene, tmp_path):
    """A coordinator as `synthfarm coordinator` runs it (datasets under its root): the panel's default dataset
    (empty: the recipe's name) is accepted, and the panel learns where the dataset is; a path of this machine
    is refused with the coordinator's reason."""
    import threading

    from synthfarm.farm.coordinator import Coordinator

    context = zmq.Context()
    coord = Coordinator(tmp_path / "state", *["tcp://127.0.0.1:0"] * 4, context=context, heartbeat=0.3)
    thread = threading.Thread(target=coord.serve, daemon=True)
    thread.start()
    try:
        farm = scene.synthfarm_farm
        farm.address = coord.clients_endpoint
        farm.out = "/somewhere/of/mine"
        with pytest.raises(RuntimeError, match="root"):
            bpy.ops.synthfarm.farm_submit()
        farm.out = ""
        assert bpy.ops.synthfarm.farm_submit() == {"FINISHED"}
        assert Path(farm.dataset) == (tmp_path / "state" / "datasets" / "tiny").resolve()
        assert bpy.ops.synthfarm.farm_cancel() == {"FINISHED"}
    finally:
        coord.stop_event.set()
        thread.join(10)
        context.term()
