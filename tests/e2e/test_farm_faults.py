"""The farm under hostile input and faults, as separate processes on loopback (the coordinator is the
`synthfarm coordinator` command): every request is answered, none ends the coordinator, limits hold.
Issue 14's findings, one test (or more) each."""
import json
import time
from pathlib import Path

import pytest

from farm_procs import Farm, SmallDisk, StandIn, raw_request

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"


@pytest.fixture()
def farm(tmp_path):
    farm = Farm(tmp_path, workers=0, coordinator_args=("--forget-after", 4))
    farm.ready()
    yield farm
    farm.stop()


def submit_body(tmp_path, **change):
    body = {"batch_id": "b", "recipe": TINY.read_text(), "recipe_dir": str(TINY.parent),
            "out": str(tmp_path / "out"), "count": 2}
    return {**body, **change}


def bomb(levels=9):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n" + TINY.read_text()


def test_no_submit_ends_the_coordinator(farm, tmp_path):
    """Finding 1: each of these once ended the coordinator; now each is answered with the field at fault."""
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    (tmp_path / "a-file").write_text("x")
    other = TINY.read_text().replace("name: tiny", "name: other")
    assert raw_request(farm.client.endpoint, "SUBMIT", submit_body(tmp_path, batch_id="first",
                                                                  out=str(tmp_path / "taken")))["ok"]
    url = farm.client.endpoint
    cases = [
        (dict(out=str(tmp_path / "full")), "not empty"),
        (dict(out=str(tmp_path / "a-file")), "is a file"),
        (dict(out="/proc/self/synthfarm"), "outside this coordinator's dataset root"),
        (dict(out="../../../etc/x"), "outside this coordinator's dataset root"),
        (dict(out=str(tmp_path / ("n" * 300))), "longer than 255 bytes"),
        (dict(out=str(tmp_path / "taken"), recipe=other, batch_id="second"), "another recipe"),
        (dict(seed=18446744073709551616), "seed"),
        (dict(seed=10 ** 30), "seed"),
        (dict(params={"radius": 10 ** 400}), "does not fit in 64 bits"),
        (dict(params={"radius": "NaN"}), "must be a number"),
        (dict(inputs={"tiny.yaml": "not-a-hash"}, recipe_path="tiny.yaml"), "inputs"),
        (dict(recipe=bomb()), "expands to more than"),
        (dict(count=10 ** 12), "more than this coordinator takes in one batch"),
        (dict(count=2 ** 70), "count"),
        (dict(name="x" * 100_000), "name"),
    ]
    for change, expected in cases:
        start = time.monotonic()
        reply = raw_request(url, "SUBMIT", submit_body(tmp_path, **change), timeout=20)
        assert not reply["ok"] and expected in reply["error"], (change.keys(), reply)
        assert time.monotonic() - start < 10, change.keys()
        assert farm.coordinator.poll() is None, f"the coordinator ended on {list(change)}"
    nan = json.dumps(submit_body(tmp_path)).replace('"count": 2', '"count": 2, "params": {"radius": NaN}')
    reply = raw_request(url, "SUBMIT", nan)
    assert not reply["ok"] and "not a finite number" in reply["error"], reply
    assert farm.client.status("first")["count"] == 2  # and it still serves
    assert not (tmp_path / "full" / "dataset.yaml").exists() and (tmp_path / "full" / "notes.txt").read_text() == "mine"


def test_a_full_output_disk_refuses_the_submit(tmp_path):
    disk = SmallDisk(tmp_path / "disk")
    farm = Farm(tmp_path, workers=0, out_root=tmp_path / "disk")
    try:
        farm.ready()
        disk.fill()
        reply = raw_request(farm.client.endpoint, "SUBMIT", submit_body(tmp_path, out="ds"))
        assert not reply["ok"] and "No space left on device" in reply["error"], reply
        assert farm.coordinator.poll() is None
        disk.free()
        assert raw_request(farm.client.endpoint, "SUBMIT", submit_body(tmp_path, out="ds2"))["ok"]
    finally:
        farm.stop()
        disk.close()


def test_unbounded_worker_input_is_refused_and_forgotten(farm):
    """Finding 4: a 10 MB host name is not stored; fake HELLOs leave no permanent rows."""
    workers = farm.client.endpoint.rsplit(":", 1)[0] + f":{farm.port}"
    big = StandIn(workers, "big", hello=False)
    big.sock.send_multipart([big.p.VERSION, b"HELLO", json.dumps({"worker_id": "big", "host": "h" * 10_000_000}).encode()])
    fakes = [StandIn(workers, f"fake-{i}") for i in range(20)]  # never heard from again
    assert len(farm.client.workers()) == 20
    assert all(w["id"] != "big" for w in farm.client.workers())
    deadline = time.time() + 30
    while time.time() < deadline and farm.client.workers():
        time.sleep(0.5)
    assert farm.client.workers() == []  # lost after 3 s, forgotten 4 s later
    for sock in [big, *fakes]:
        sock.close()
    assert farm.coordinator.poll() is None
