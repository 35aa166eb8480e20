"""Benchmark: how much of a job's wall time is not the render call.

Renders the toybox recipe (640x480, 16 samples) through ``synthfarm.render`` in this process and, for
the same frames in the same run, times the bare ``bpy.ops.render.render()`` call that synthfarm makes.
Prints per job: wall seconds, render-call seconds, overhead fraction; then the mean overhead after the
first job (target: <= 5 %). The render time is taken around the very
``bpy.ops.render.render()`` call (stored in each frame's metadata as ``timings.render``); everything else
in the job's wall time (scene set-up, physics, pass read-back, labels, file writes, clean-up) is overhead.

    python tests/bench/render_overhead.py [--jobs 6] [--samples 16]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="synthfarm-bench-"))

import synthfarm  # noqa: E402
from synthfarm.addon.core.recipe import load_recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--recipe", default=str(ROOT / "assets/recipes/toybox.yaml"))
    args = parser.parse_args()

    recipe_path = Path(args.recipe)
    data = load_recipe(recipe_path).to_data()
    data["sensors"][0]["samples"] = args.samples
    import yaml

    work = Path(tempfile.mkdtemp(prefix="synthfarm-bench-"))
    patched = recipe_path.parent / f".bench-{os.getpid()}.yaml"  # beside the original: relative paths hold
    patched.write_text(yaml.safe_dump(data))

    job_ends: list[float] = []
    start = time.perf_counter()
    try:
        summary = synthfarm.render(patched, jobs=args.jobs, out=work / "out",
                                   progress=lambda done, total: job_ends.append(time.perf_counter()))
    finally:
        patched.unlink(missing_ok=True)
    # the render call's own time, measured around bpy.ops.render.render() and stored per frame
    render_calls = [sum(json.loads(p.read_text())["timings"]["render"]
                        for p in sorted((work / "out" / "metadata").glob(f"{job:010d}-*-meta.json")))
                    for job in range(args.jobs)]
    walls = [b - a for a, b in zip([start] + job_ends[:-1], job_ends)]
    print(f"toybox {data['sensors'][0]['resolution']} samples={args.samples} jobs={args.jobs} "
          f"device={summary.device}")
    print(f"{'job':>4} {'wall s':>8} {'render s':>9} {'overhead':>9}")
    overheads = []
    for i, (wall, rend) in enumerate(zip(walls, render_calls)):
        overhead = (wall - rend) / wall
        if i > 0:
            overheads.append(overhead)
        print(f"{i:>4} {wall:8.3f} {rend:9.3f} {overhead:9.1%}")

    print(f"mean overhead after the first job: {statistics.mean(overheads):.1%} (target <= 5%)")


if __name__ == "__main__":
    main()
