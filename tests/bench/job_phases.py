"""Benchmark: where a warm job's time goes besides the render call, phase by phase, in one process.

The recipe is made as ``render_overhead.py`` makes it (every output; the preview tier: half size, 1 sample), then N
one-frame jobs render in this process (``LocalBatch``); the first ``--warm`` are left out. Each phase of
``Runner.run_job`` is timed in wall time and in this thread's CPU time (steadier under load: the rest of the wall
time is waiting for a core), per job: the job's set-up (prepare, the JobScope, generators, modifiers, cameras,
randomizers), the render settings, the render call with the passes' round trip, the labels, and the JobScope's
clean-up. ``--profile FILE`` also writes cProfile's statistics of the warm jobs.

    python tests/bench/job_phases.py [--recipe assets/recipes/toybox.yaml] [--jobs 12] [--warm 2] [--full]
    PYTHONPATH=DIR python tests/bench/job_phases.py ...   # another version (DIR/synthfarm, e.g. from git archive)
"""
from __future__ import annotations

import argparse
import cProfile
import functools
import json
import os
import tempfile
import time
from pathlib import Path

from render_overhead import ROOT, make_recipe


def timed(table: dict, owner, name: str, label: str) -> None:
    """Wrap ``owner.name`` so that each call adds its wall and thread CPU seconds to ``table[label]``."""
    inner = getattr(owner, name)

    @functools.wraps(inner)
    def wrapper(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return inner(*args, **kwargs)
        finally:
            row = table.setdefault(label, [0.0, 0.0, 0])
            row[0] += time.perf_counter() - wall
            row[1] += time.thread_time() - cpu
            row[2] += 1

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipe", type=Path, default=ROOT / "assets" / "recipes" / "toybox.yaml")
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--warm", type=int, default=2, help="jobs left out at the start (a cold process)")
    parser.add_argument("--full", action="store_true", help="the full tier (640x480, 16 samples), not the preview")
    parser.add_argument("--profile", type=Path, help="write cProfile's statistics of the warm jobs here")
    args = parser.parse_args()

    from synthfarm.addon.engine import api, render, runner, scene

    table: dict[str, list] = {}
    phases = [(runner.Runner, "prepare", "prepare"), (scene.JobScope, "__enter__", "scope enter"),
              (runner, "generate", "build: generators"), (runner, "apply_modifiers", "build: modifiers"),
              (runner.sensors, "build_cameras", "build: cameras"), (runner, "apply_randomizers", "build: randomizers"),
              (runner.Runner, "build", "build"), (render, "configure", "render settings"),
              (render, "render_frame", "render call + passes"), (runner, "frame_labels", "labels"),
              (scene.JobScope, "__exit__", "scope exit"), (runner.Runner, "run_job", "run_job")]
    for owner, name, label in phases:
        timed(table, owner, name, label)
    recipe = make_recipe(args.recipe, (640, 480), 16)
    out = Path(tempfile.mkdtemp(prefix="synthfarm-phases-")) / "dataset"
    try:
        batch = api.LocalBatch(recipe, args.jobs, out, preview=not args.full)
        for _ in range(args.warm):
            batch.step()
        table.clear()
        profile = cProfile.Profile() if args.profile else None
        start = time.perf_counter()
        if profile:
            profile.enable()
        while batch.step():
            pass
        if profile:
            profile.disable()
            profile.dump_stats(args.profile)
        seconds = time.perf_counter() - start
        batch.finish()
    finally:
        recipe.unlink(missing_ok=True)
    jobs = args.jobs - args.warm
    meta = [json.loads(p.read_text())["timings"] for p in sorted((out / "metadata").glob("*-meta.json"))][args.warm:]
    render_call = sum(t["render"] for t in meta) / max(1, len(meta))
    print(f"{args.recipe.name}, {'full' if args.full else 'preview'} tier, {jobs} warm one-frame jobs, "
          f"load {os.getloadavg()[0]:.1f}: {seconds / jobs * 1e3:.1f} ms per job, render call {render_call * 1e3:.1f} ms")
    print(f"{'phase':24} {'wall ms/job':>12} {'CPU ms/job':>11} {'calls':>6}")
    for _, _, label in phases:
        wall, cpu, calls = table.get(label, (0.0, 0.0, 0))
        print(f"{label:24} {wall / jobs * 1e3:12.1f} {cpu / jobs * 1e3:11.1f} {calls:6d}")


if __name__ == "__main__":
    main()
