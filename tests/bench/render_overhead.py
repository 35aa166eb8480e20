"""Benchmark: how much of a frame's wall time is not the render call, in a warm worker.

Each run is a real ``synthfarm render`` (the embedded farm: a coordinator, a worker and its Blender child; or
``--in-process``) of N one-frame jobs of a recipe with every output (image, depth, normals, instance and class
masks) and every label. The preview tier is ``--preview`` with the recipe's preview
set to half size and 1 sample (no denoising); the full tier renders at ``--size`` with ``--samples`` and the
sensor's denoising. A frame's wall time in the steady state is the time between two consecutive frames'
annotations landing (their files' modification times; a frame is committed when its annotation is renamed into
place, and a rename keeps the time), after the first ``--warm`` jobs; the render call's own time is measured
around ``bpy.ops.render.render()`` and stored in each frame's metadata (``timings.render``). Overhead = 1 - render
calls / wall; the parts of the rest that each frame's metadata times (the job's scene build, the passes' round
trip, the labels; medians) are printed beside it. The CPU time of each run (the command and every process it
waited for: its Blender child, start-up included) is printed too: under load, a pipeline that overlaps more can
look slower in wall time. Targets (issue 13): <= 25 % at the preview tier (320x240, 1 sample), <= 5 % at 640x480,
16 samples.

With ``--against DIR`` (a copy of another version of synthfarm: ``DIR/synthfarm/__init__.py``, e.g. made with
``git archive``), the same runs of that version are interleaved with this one's, round by round. With ``--ahead 0 1``
the farm runs are repeated with each lease-ahead depth of the embedded farm's worker (set by a bootstrap, as
``embedded.AHEAD`` and as the ``Worker``'s default, so that a version without the former is measured the same way).

    python tests/bench/render_overhead.py [--tier preview|full|both] [--mode farm|in-process|both] [--jobs 12]
        [--rounds 2] [--against /tmp/main-export] [--recipe assets/recipes/toybox.yaml] [--size 640 480] [--samples 16]
        [--ahead 0 1]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from against import checked_against

ROOT = Path(__file__).resolve().parents[2]
TIERS = {"preview": ["--preview"], "full": []}  # preview: half size, 1 sample (see make_recipe), no denoising
OUTPUTS = ["rgb", "depth", "normals", "instance_mask", "semantic_mask"]
# the parts of a frame's non-render time its metadata times (timings: the job's scene build, saving and reading back
# the passes, the labels); the rest is writing, the farm's and the process's own, and waiting for a core
PARTS = ("setup", "passes_io", "labels")
# `synthfarm render` with the embedded farm's workers holding AHEAD tasks (argv[1]) besides the one they render
WITH_AHEAD = ("import sys; from synthfarm.farm import embedded, worker; "
              "embedded.AHEAD = worker.Worker.__init__.__kwdefaults__['ahead'] = int(sys.argv.pop(1)); "
              "from synthfarm.cli import main; main(prog_name='synthfarm')")


def make_recipe(source: Path, size, samples: int) -> Path:
    data = yaml.safe_load(source.read_text())
    for sensor in data["sensors"]:
        sensor.update(resolution=list(size), samples=samples, outputs=OUTPUTS)
    data.setdefault("output", {})["preview"] = {"scale": 0.5, "samples": 1}
    path = source.parent / f".bench-{os.getpid()}.yaml"  # beside it: relative paths hold
    path.write_text(yaml.safe_dump(data))
    return path


def run(version: Path | None, recipe: Path, tier: str, jobs: int, mode: str, out: Path, warm: int,
        ahead: int | None = None) -> dict:
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(out.parent / "blender-user"))
    if version is not None:
        env["PYTHONPATH"] = str(version)
    start = ["-c", WITH_AHEAD, str(ahead)] if ahead is not None else ["-m", "synthfarm.cli"]
    cmd = [sys.executable, *start, "render", str(recipe), "--jobs", str(jobs), "--out", str(out)]
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd + TIERS[tier] + (["--in-process"] if mode == "in-process" else []), env=env,
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the command and every process it waited for
    cpu = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    landed = sorted((p.stat().st_mtime_ns / 1e9, p.name.removesuffix("-ann.json"))
                    for p in (out / "annotations").glob("*-ann.json"))[warm:]
    timings = [json.loads((out / "metadata" / f"{stem}-meta.json").read_text())["timings"] for _, stem in landed[1:]]
    render = sum(t["render"] for t in timings)
    wall = landed[-1][0] - landed[0][0]
    parts = {key: statistics.median(t.get(key) or 0.0 for t in timings) for key in PARTS}
    return {"wall": wall / (len(landed) - 1), "render": render / (len(landed) - 1), "overhead": 1 - render / wall,
            "cpu": cpu, **parts}


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
    parser.add_argument("--ahead", type=int, nargs="+", help="farm runs with each of these lease-ahead depths "
                        "(default: each version's own)")
    args = parser.parse_args()
    tiers = ["preview", "full"] if args.tier == "both" else [args.tier]
    modes = ["farm", "in-process"] if args.mode == "both" else [args.mode]
    against = checked_against(parser, args.against)
    versions = {"this": None, **({"against": against} if against else {})}
    work = Path(tempfile.mkdtemp(prefix="synthfarm-bench-"))
    recipe = make_recipe(args.recipe, args.size, args.samples)
    results: dict[tuple, list[dict]] = {}
    try:
        for rnd in range(args.rounds):
            for tier in tiers:
                for mode in modes:
                    depths = args.ahead if args.ahead and mode == "farm" else [None]
                    runs = [(name, depth) for name in versions for depth in depths]
                    for name, depth in runs[::1 if rnd % 2 == 0 else -1]:  # alternate which goes first
                        label = name if depth is None else f"{name}/a{depth}"
                        out = work / f"{tier}-{mode}-{label.replace('/', '-')}-{rnd}"
                        result = run(versions[name], recipe, tier, args.jobs, mode, out, args.warm, depth)
                        results.setdefault((tier, mode, label), []).append(result)
                        print(f"round {rnd} {tier:7} {mode:10} {label:8} wall {result['wall'] * 1e3:8.1f} ms/frame, "
                              f"render call {result['render'] * 1e3:8.1f} ms, overhead {result['overhead']:6.1%}, "
                              f"CPU {result['cpu']:5.2f} s/run, load {os.getloadavg()[0]:.1f}; of it (ms, median): "
                              + ", ".join(f"{key} {result[key] * 1e3:.1f}" for key in PARTS), flush=True)
    finally:
        recipe.unlink(missing_ok=True)
    print(f"\n{args.recipe.name}, {args.jobs} one-frame jobs, first {args.warm} left out, median of {args.rounds} "
          f"rounds, load {os.getloadavg()[0]:.1f}")
    print(f"{'tier':8} {'mode':11} {'version':10} {'ms/frame':>9} {'render ms':>10} {'overhead':>9} {'range':>13} "
          f"{'wall/render':>12} {'CPU s/run':>10} " + " ".join(f"{key + ' ms':>12}" for key in PARTS))
    for (tier, mode, name), rows in results.items():
        wall = statistics.median(r["wall"] for r in rows)
        render = statistics.median(r["render"] for r in rows)
        overhead = statistics.median(r["overhead"] for r in rows)
        cpu = statistics.median(r["cpu"] for r in rows)
        spread = f"{min(r['overhead'] for r in rows):.1%}-{max(r['overhead'] for r in rows):.1%}"
        target = 0.25 if tier == "preview" else 0.05
        parts = " ".join(f"{statistics.median(r[key] for r in rows) * 1e3:12.1f}" for key in PARTS)
        print(f"{tier:8} {mode:11} {name:10} {wall * 1e3:9.1f} {render * 1e3:10.1f} {overhead:9.1%} {spread:>13} "
              f"{wall / render:12.2f} {cpu:10.2f} {parts}   (target <= {target:.0%})")


if __name__ == "__main__":
    main()
