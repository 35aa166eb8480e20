"""Fixtures shared by the Blender tests."""
import threading

import pytest
import zmq


@pytest.fixture
def addon():
    """The default scene with the add-on registered (the scene is what the fixture gives)."""
    import bpy

    import synthfarm

    bpy.ops.wm.read_factory_settings(use_empty=False)
    synthfarm.register()
    yield bpy.context.scene
    synthfarm.unregister()


@pytest.fixture
def coordinator(tmp_path):
    """A real coordinator on loopback in a thread, as a machine's user runs it (datasets anywhere)."""
    from synthfarm.farm.coordinator import Coordinator

    context = zmq.Context()
    coord = Coordinator(tmp_path / "state", *["tcp://127.0.0.1:0"] * 4, context=context, heartbeat=0.3,
                        any_out=True)
    thread = threading.Thread(target=coord.serve, daemon=True)
    thread.start()
    yield coord
    coord.stop_event.set()
    thread.join(10)
    context.term()
