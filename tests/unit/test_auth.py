"""With keys, only authorized workers and clients get through (CURVE + ZAP, real sockets on loopback)."""
import threading
from pathlib import Path

import pytest
import zmq

from synthfarm.farm import protocol as p
from synthfarm.farm.auth import KeysError, init_keys, secure_client
from synthfarm.farm.client import FarmClient, FarmError
from synthfarm.farm.coordinator import Coordinator

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.yaml"


@pytest.fixture()
def secured(tmp_path):
    keys, other = tmp_path / "keys", tmp_path / "other"
    init_keys(keys)
    init_keys(other)
    context = zmq.Context()
    coord = Coordinator(tmp_path / "state", *["tcp://127.0.0.1:0"] * 4, context=context, heartbeat=0.2, keys=keys,
                        out_root=tmp_path, shared_roots=(TINY.parent,))
    thread = threading.Thread(target=coord.serve, daemon=True)
    thread.start()
    yield coord, keys, other, context
    coord.stop_event.set()
    thread.join(10)
    context.destroy(linger=0)


def worker_socket(context, coord, keys, role):
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.ROUTING_ID, b"w")
    if keys:
        secure_client(sock, keys, role)
    sock.connect(coord.workers_endpoint)
    sock.send_multipart(p.encode("HELLO", p.Hello(worker_id="w")))
    return sock


def test_only_authorized_clients_submit_or_read(secured, tmp_path):
    coord, keys, other, context = secured
    good = FarmClient(coord.clients_endpoint, timeout=5, context=context, keys=keys)
    good.submit(batch_id="b", recipe=TINY.read_text(), recipe_dir=str(TINY.parent), out=str(tmp_path / "out"), count=2)
    assert good.status("b")["jobs"]["queued"] == 2
    for stranger, why in ((FarmClient(coord.clients_endpoint, timeout=5, context=context, keys=other),
                           "is not its key, or it uses no keys"),
                          (FarmClient(coord.clients_endpoint, timeout=5, context=context),
                           "it uses keys and we do not")):
        with pytest.raises(FarmError, match=f"refused the connection: .*{why}"):
            stranger.status("b")
        with pytest.raises(FarmError, match="refused the connection"):
            stranger.submit(batch_id="x", recipe=TINY.read_text(), recipe_dir=str(TINY.parent),
                            out=str(tmp_path / "x"), count=1)
    assert [b["id"] for b in good.status()["batches"]] == ["b"]


def test_only_authorized_workers_pull_tasks(secured, tmp_path):
    coord, keys, other, context = secured
    FarmClient(coord.clients_endpoint, timeout=5, context=context, keys=keys).submit(
        batch_id="b", recipe=TINY.read_text(), recipe_dir=str(TINY.parent), out=str(tmp_path / "out"), count=1)
    for bad_keys, role in ((other, "worker"), (keys, "client"), (None, None)):  # a client's key is no worker's
        sock = worker_socket(context, coord, bad_keys, role)
        sock.send_multipart(p.encode("REQUEST", p.Request(worker_id="w")))
        assert not sock.poll(800)
        sock.close()
    sock = worker_socket(context, coord, keys, "worker")
    assert sock.poll(3000) and p.decode(sock.recv_multipart())[0] == "WELCOME"
    sock.send_multipart(p.encode("REQUEST", p.Request(worker_id="w")))
    assert sock.poll(3000) and p.decode(sock.recv_multipart())[0] == "TASK"


def test_keys_are_not_overwritten(tmp_path):
    init_keys(tmp_path)
    with pytest.raises(KeysError, match="already holds keys"):
        init_keys(tmp_path)
    assert oct((tmp_path / "worker.key_secret").stat().st_mode)[-3:] == "600"
