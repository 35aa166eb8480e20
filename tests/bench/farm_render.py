"""Benchmarks of the farm with real Blender workers.

overhead: the toybox recipe (640x480, 16 samples) on the embedded farm with one worker vs the bare
    ``bpy.ops.render.render()`` time of the same frames, measured in the same run (each frame's
    ``timings.render``). Per job, wall time is the time between consecutive attempt ends on the worker
    (from the farm's SQLite). Target: at most 5 % of wall time is not rendering, after the first job.
memory: N preview frames of toybox on one worker with recycling on (--max-jobs), sampling the Blender
    child's RSS once a second. Target: RSS stays within 10 % of its level after frame 10.

    python tests/bench/farm_render.py overhead [--jobs 8]
    python tests/bench/farm_render.py memory [--frames 1000] [--max-jobs 0]
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path

import psutil

from synthfarm.farm.embedded import render_on_farm

ROOT = Path(__file__).resolve().parents[2]
TOYBOX = ROOT / "assets" / "recipes" / "toybox.yaml"


def overhead(jobs: int) -> None:
    out = Path(tempfile.mkdtemp(prefix="synthfarm-bench-")) / "out"
    summary = render_on_farm(TOYBOX, jobs, out, workers=1)
    db = sqlite3.connect(out / ".farm" / "farm.sqlite")
    rows = db.execute("SELECT job_id, started, finished FROM attempts WHERE status='done' ORDER BY finished").fetchall()
    print(f"toybox 640x480 16 samples, {jobs} jobs, embedded farm with 1 worker: {summary.seconds:.1f} s in all "
          "(child start-up included)")
    print(f"{'job':>4} {'wall s':>8} {'render s':>9} {'overhead':>9}")
    overheads = []
    previous_end = None
    for job_id, started, finished in rows:
        render = sum(json.loads(p.read_text())["timings"]["render"]
                     for p in (out / "metadata").glob(f"{job_id:010d}-*-meta.json"))
        wall = finished - (previous_end if previous_end is not None else started)
        share = (wall - render) / wall
        if previous_end is not None:
            overheads.append(share)
        previous_end = finished
        print(f"{job_id:>4} {wall:8.3f} {render:9.3f} {share:9.1%}")
    print(f"mean overhead after the first job: {statistics.mean(overheads):.1%} (target <= 5%)")


def memory(frames: int, max_jobs: int) -> None:
    out = Path(tempfile.mkdtemp(prefix="synthfarm-bench-")) / "out"
    samples: list[tuple[int, float]] = []  # (frames done, child RSS MB)
    done = [0]
    stop = threading.Event()

    def sample():
        me = psutil.Process()
        while not stop.is_set():
            rss = sum(c.memory_info().rss for c in me.children(recursive=True) if c.is_running())
            if rss:  # 0 while a child is being (re)started
                samples.append((done[0], rss / 1e6))
            time.sleep(1.0)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()

    def progress(n, total):
        done[0] = n

    render_on_farm(TOYBOX, frames, out, preview=True, workers=1, max_jobs=max_jobs, progress=progress,
                   poll_seconds=0.5)
    stop.set()
    thread.join()
    after10 = next((rss for n, rss in samples if n >= 10), samples[0][1])
    later = [rss for n, rss in samples if n > 10]
    print(f"{frames} preview frames of toybox (320x240, 4 samples) on 1 worker, max-jobs {max_jobs or 'off'}: "
          f"{time.perf_counter() - start:.0f} s")
    print(f"Blender child RSS after frame 10: {after10:.0f} MB; later: max {max(later):.0f} MB, "
          f"last {later[-1]:.0f} MB ({(max(later) / after10 - 1):+.1%} at most; target within 10%)")
    for n, rss in samples[:: max(1, len(samples) // 12)]:
        print(f"  frame {n:>5}: {rss:7.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=("overhead", "memory"))
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--max-jobs", type=int, default=0)
    args = parser.parse_args()
    if args.what == "overhead":
        overhead(args.jobs)
    else:
        memory(args.frames, args.max_jobs)
