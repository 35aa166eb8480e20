"""A batch's size must not slow the farm (issue 14, finding 6). A coordinator process on loopback; we measure
status requests per second and the time of one job page, first with a 10-job batch only, then with a
1,000,000-job batch beside it, and print both and their ratio (1.0: size costs nothing).

    python tests/bench/farm_scale.py [--jobs 1000000] [--seconds 5]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))
from farm_procs import Farm, raw_request  # noqa: E402

TINY = ROOT / "tests" / "data" / "tiny.yaml"


def rate(farm, batch_id: str, seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        farm.client.status(batch_id)
        n += 1
    return n / (time.perf_counter() - start)


def page_seconds(url: str, batch_id: str, offset: int) -> float:
    start = time.perf_counter()
    reply = raw_request(url, "JOBS", {"batch_id": batch_id, "offset": offset, "limit": 1000}, timeout=600)
    assert reply["ok"], reply
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="synthfarm-scale-") as tmp:
        farm = Farm(Path(tmp), workers=0)
        try:
            url = farm.client.endpoint
            body = {"recipe": TINY.read_text(), "recipe_dir": str(TINY.parent)}
            deadline = time.time() + 60
            while not raw_request(url, "SUBMIT", {**body, "batch_id": "small", "out": "small", "count": 10})["ok"]:
                assert time.time() < deadline
            base_rate, base_page = rate(farm, "small", args.seconds), page_seconds(url, "small", 0)
            start = time.perf_counter()
            assert raw_request(url, "SUBMIT", {**body, "batch_id": "big", "out": "big", "count": args.jobs},
                               timeout=600)["ok"]
            submit = time.perf_counter() - start
            big_rate = rate(farm, "big", args.seconds)
            small_rate = rate(farm, "small", args.seconds)
            big_page = page_seconds(url, "big", args.jobs // 2)
        finally:
            farm.stop()
    print(f"submit of {args.jobs} jobs: {submit:.1f} s")
    print(f"status/s: 10-job batch alone {base_rate:.0f}; with the big batch present: of the small one "
          f"{small_rate:.0f} (ratio {small_rate / base_rate:.2f}), of the big one {big_rate:.0f} "
          f"(ratio {big_rate / base_rate:.2f})")
    print(f"one page of 1000 jobs: small batch {base_page * 1000:.1f} ms, big batch (middle) {big_page * 1000:.1f} ms "
          f"(ratio {big_page / base_page:.2f})")


if __name__ == "__main__":
    main()
