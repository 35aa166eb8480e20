"""Benchmark: ``synthfarm render``'s fixed start and stop, from launch to the first frame on disk and to exit.

Runs, in interleaved rounds so the machine's load falls on all alike: the floor (``python -c "import bpy"``,
the Blender boot any render pays), ``synthfarm render --in-process`` and ``synthfarm render`` (the embedded farm),
one preview job each into a fresh folder. Prints the medians and their ratios to the floor, and what the first
job itself took (its metadata's timings: scene set-up, render call, labels, writing); the rest is start-up.

The recipe is rendered at issue 13's preview tier: every output, 320x240, 1 sample (``render_overhead.make_recipe``
at 640x480 with the preview at half size). synthfarm's modules are compiled first (``compileall``), as an
installed package's are: a checkout run with ``PYTHONDONTWRITEBYTECODE`` would otherwise compile them at every launch.

    python tests/bench/launch.py [--rounds 3] [--recipe tests/data/tiny.yaml]
"""
from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from render_overhead import make_recipe

ROOT = Path(__file__).resolve().parents[2]
SYNTHFARM = [sys.executable, "-m", "synthfarm.cli"]


def timed(cmd: list[str], images: Path | None) -> tuple[float, float]:
    """(seconds to the first image in ``images``, seconds to exit) of a command."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = None
    while proc.poll() is None:
        if first is None and images is not None and images.is_dir() and any(images.glob("*.png")):
            first = time.perf_counter() - start
        time.sleep(0.005)
    end = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}")
    return (first if first is not None else end), end


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--recipe", default=str(ROOT / "tests" / "data" / "tiny.yaml"))
    args = parser.parse_args()
    compileall.compile_dir(ROOT, quiet=1, rx=__import__("re").compile(r"[\\/](tests|build|\\.)"))
    recipe = make_recipe(Path(args.recipe), (640, 480), 16)
    tmp = Path(tempfile.mkdtemp(prefix="synthfarm-bench-launch-"))
    job_times: dict[str, list[dict]] = {}
    runs = {"floor: python -c 'import bpy'": [], "synthfarm render --in-process": [], "synthfarm render": []}
    try:
        for r in range(args.rounds):
            runs["floor: python -c 'import bpy'"].append(timed([sys.executable, "-c", "import bpy"], None))
            for name, extra in (("synthfarm render --in-process", ["--in-process"]), ("synthfarm render", [])):
                out = tmp / f"{r}-{len(extra)}"
                runs[name].append(timed([*SYNTHFARM, "render", str(recipe), "--jobs", "1", "--preview", "--device",
                                         "cpu", "--out", str(out), *extra], out / "images"))
                meta = next((out / "metadata").glob("*-meta.json"))
                job_times.setdefault(name, []).append(json.loads(meta.read_text())["timings"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        recipe.unlink(missing_ok=True)
    floor = statistics.median(end for _, end in runs["floor: python -c 'import bpy'"])
    print(f"{Path(args.recipe).name}, one preview job (320x240, 1 sample, every output), median of {args.rounds} interleaved rounds; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for name, times in runs.items():
        first, end = statistics.median(f for f, _ in times), statistics.median(e for _, e in times)
        print(f"  {name:<32} first frame {first:5.2f} s ({first / floor:4.2f} x floor), exit {end:5.2f} s "
              f"({end / floor:4.2f} x floor)")
        if name in job_times:
            parts = {key: statistics.median(t.get(key) or 0.0 for t in job_times[name])
                     for key in ("setup", "render", "labels", "write")}
            print("    the job itself: " + ", ".join(f"{key} {value:.2f} s" for key, value in parts.items()))


if __name__ == "__main__":
    main()
