"""One big batch costs nothing to the others (issue 14, finding 6): status reads counts kept as jobs change (the
same SQLite work for 10 jobs or 200,000), and job listings come in bounded pages."""
import json
import time
from pathlib import Path

from farm_procs import Farm, StandIn, raw_request
from synthfarm.farm.store import Store

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"
BIG = 200_000


def vm_steps(db, work) -> int:
    """SQLite virtual machine steps (in hundreds) that ``work`` makes on ``db``: work done, not time taken."""
    steps = [0]

    def count():
        steps[0] += 1
        return 0

    db.set_progress_handler(count, 100)
    try:
        work()
    finally:
        db.set_progress_handler(None, 100)
    return steps[0]


def test_status_and_listing_cost_the_same_at_any_batch_size(tmp_path):
    farm = Farm(tmp_path, workers=0)
    try:
        farm.ready()
        url = farm.client.endpoint
        for batch_id, count in (("small", 10), ("big", BIG)):
            body = {"batch_id": batch_id, "recipe": TINY.read_text(), "recipe_dir": str(TINY.parent),
                    "out": str(tmp_path / batch_id), "count": count}
            assert raw_request(url, "SUBMIT", body, timeout=120)["ok"]
        w = StandIn(f"tcp://127.0.0.1:{farm.port}", "w")
        for _ in range(3):  # some transitions, so the counts have moved
            w.render(w.take())
        w.finish(w.take(), ok=False, error="boom")
        time.sleep(0.5)
        page = raw_request(url, "JOBS", {"batch_id": "big", "offset": 0, "limit": 100_000})
        assert page["ok"] and len(page["data"]["jobs"]) == 1000 and page["data"]["next"] == 1000
        assert len(json.dumps(page)) < 1_000_000  # a bounded reply, not 64 MB
        last = raw_request(url, "JOBS", {"batch_id": "big", "offset": BIG - 10, "limit": 1000})["data"]
        assert [j["job_id"] for j in last["jobs"]] == list(range(BIG - 10, BIG)) and last["next"] is None
        expected = farm.client.status("big")["jobs"]
    finally:
        farm.stop()
    store = Store(tmp_path / "state" / "farm.sqlite")
    counted = dict(store.db.execute("SELECT status, COUNT(*) FROM jobs WHERE batch_id='big' GROUP BY status"))
    assert {k: v for k, v in expected.items() if v} == counted  # the kept counts are the true counts
    small = vm_steps(store.db, lambda: store.summary("small"))
    big = vm_steps(store.db, lambda: store.summary("big"))
    assert big <= small + 2, (small, big)  # the same work whatever the size (a scan of 200,000 rows is thousands)
    finished = vm_steps(store.db, lambda: store.batch_finished("big"))
    assert finished <= 2, finished
    store.close()
