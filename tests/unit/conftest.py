"""Fixtures shared by the unit tests."""
import threading
from pathlib import Path

import pytest
import zmq

from synthfarm.farm.client import FarmClient
from synthfarm.farm.coordinator import Coordinator

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.yaml"


@pytest.fixture()
def inproc_farm(tmp_path):
    """A real coordinator (real SQLite file) in a thread, its workers' socket on inproc (two messages a worker sends
    are both there when the coordinator next reads: one cycle handles both): (coordinator, client, context)."""
    context = zmq.Context()
    coord = Coordinator(tmp_path / "state", f"inproc://workers-{id(tmp_path)}", "tcp://127.0.0.1:0",
                        "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", context=context, heartbeat=0.2,
                        out_root=tmp_path, shared_roots=(TINY.parent,))
    thread = threading.Thread(target=coord.serve, daemon=True)
    thread.start()
    client = FarmClient(coord.clients_endpoint, timeout=10, context=context)
    yield coord, client, context
    coord.stop()
    thread.join(20)
    context.destroy(linger=0)
