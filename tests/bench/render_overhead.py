"""Benchmark: how much of a frame's wall time is not the render call, in a warm worker.

Each run is a real ``synthfarm render`` (the embedded farm: a coordinator, a worker and its Blender child; or
``--in-process``) of N one-frame jobs of a recipe with every output (image, depth, normals, instance and class
masks) and every label. The preview tier is ``--preview`` with the recipe's preview
set to half size and 1 sample (no denoising); the full tier renders at ``--size`` with ``--samples`` and the
sensor's denoising. A frame's wall time in the steady state is the time between two consecutive frames'
annotations landing (their files' modification times; a frame is committed when its annotation is renamed into
place, and a rename keeps the time), after the first ``--warm`` jobs; the render call's own time is measured
around ``bpy.ops.render.render()`` and stored in each frame's metadata (``timings.render``). Overhead = 1 - render
calls / wall. Targets (issue 13): <= 25 % at the preview tier (320x240, 1 sample), <= 5 % at 640x480, 16 samples.

With ``--against DIR`` (a copy of another version of synthfarm: ``DIR/synthfarm/__init__.py``, e.g. made with
``git archive``), the same runs of that version are interleaved with this one's, round by round.

    python tests/bench/render_overhead.py [--tier preview|full|both] [--mode farm|in-process|both] [--jobs 12]
        [--rounds 2] [--against /tmp/main-export] [--recipe assets/recipes/toybox.yaml] [--size 640 480] [--samples 16]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TIERS = {"preview": ["--preview"], "full": []}  # preview: half size, 1 sample (see make_recipe), no denoising
OUTPUTS = ["rgb", "depth", "normals", "instance_mask", "semantic_mask"]


def make_recipe(source: Path, size, samples: int) -> Path:
    data = yaml.safe_load(source.read_text())
    for sensor in data["sensors"]:
        sensor.update(resolution=list(size), samples=samples, outputs=OUTPUTS)
    data.setdefault("output", {})["preview"] = {"scale": 0.5, "samples": 1}
    path = source.parent / f".bench-{os.getpid()}.yaml"  # beside it: relative paths hold
    path.write_text(yaml.safe_dump(data))
    return path


def run(version: Path | None, recipe: Path, tier: str, jobs: int, mode: str, out: Path, warm: int) -> dict:
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(out.parent / "blender-user"))
    if version is not None:
        env["PYTHONPATH"] = str(version)
    cmd = [sys.executable, "-m", "synthfarm.cli", "render", str(recipe), "--jobs", str(jobs), "--out", str(out)]
    done = subprocess.run(cmd + TIERS[tier] + (["--in-process"] if mode == "in-process" else []), env=env,
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    landed = sorted((p.stat().st_mtime_ns / 1e9, p.name.removesuffix("-ann.json"))
                    for p in (out / "annotations").glob("*-ann.json"))[warm:]
    render = sum(json.loads((out / "metadata" / f"{stem}-meta.json").read_text())["timings"]["render"]
                 for _, stem in landed[1:])
    wall = landed[-1][0] - landed[0][0]
    return {"wall": wall / (len(landed) - 1), "render": render / (len(landed) - 1), "overhead": 1 - render / wall}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tier", choices=["preview", "full", "both"], default="both")
    parser.add_argument("--mode", choices=["farm", "in-process", "both"], default="farm")
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--warm", type=int, default=2, help="jobs left out at the start (a cold worker)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--against", type=Path, help="another version of synthfarm to interleave with this one")
    parser.add_argument("--recipe", type=Path, default=ROOT / "tests" / "data" / "tiny.yaml")
    parser.add_argument("--size", type=int, nargs=2, default=(640, 480), help="the full tier's (preview: half)")
    parser.add_argument("--samples", type=int, default=16, help="the full tier's (preview: 1)")
    args = parser.parse_args()
    tiers = ["preview", "full"] if args.tier == "both" else [args.tier]
    modes = ["farm", "in-process"] if args.mode == "both" else [args.mode]
    versions = {"this": None, **({"against": args.against.resolve()} if args.against else {})}
    work = Path(tempfile.mkdtemp(prefix="synthfarm-bench-"))
    recipe = make_recipe(args.recipe, args.size, args.samples)
    results: dict[tuple, list[dict]] = {}
    try:
        for rnd in range(args.rounds):
            for tier in tiers:
                for mode in modes:
                    names = list(versions)[::1 if rnd % 2 == 0 else -1]  # alternate which version goes first
                    for name in names:
                        out = work / f"{tier}-{mode}-{name}-{rnd}"
                        result = run(versions[name], recipe, tier, args.jobs, mode, out, args.warm)
                        results.setdefault((tier, mode, name), []).append(result)
                        print(f"round {rnd} {tier:7} {mode:10} {name:7} wall {result['wall'] * 1e3:8.1f} ms/frame, "
                              f"render call {result['render'] * 1e3:8.1f} ms, overhead {result['overhead']:6.1%}",
                              flush=True)
    finally:
        recipe.unlink(missing_ok=True)
    print(f"\n{args.recipe.name}, {args.jobs} one-frame jobs, first {args.warm} left out, median of {args.rounds} "
          f"rounds, load {os.getloadavg()[0]:.1f}")
    print(f"{'tier':8} {'mode':11} {'version':8} {'ms/frame':>9} {'render ms':>10} {'overhead':>9} {'wall/render':>12}")
    for (tier, mode, name), rows in results.items():
        wall = statistics.median(r["wall"] for r in rows)
        render = statistics.median(r["render"] for r in rows)
        overhead = statistics.median(r["overhead"] for r in rows)
        target = 0.25 if tier == "preview" else 0.05
        print(f"{tier:8} {mode:11} {name:8} {wall * 1e3:9.1f} {render * 1e3:10.1f} {overhead:9.1%} "
              f"{wall / render:12.2f}   (target <= {target:.0%})")


if __name__ == "__main__":
    main()
