"""Benchmark: what each Cycles speed setting a sensor may choose (``cycles:``) saves on the example scene.

Renders the toybox recipe at a tiny size through ``synthfarm.render`` in this process (one warm Runner, as a farm
worker keeps), once with the scene's factory settings and once per variant, in interleaved rounds so the machine's
load falls on all alike; the same seed gives every variant the same scenes. Prints per variant the render call's
time (``timings.render`` of each frame) as a ratio to the factory settings' in the same run, and how far its images
are from the factory settings' (mean absolute difference in 8-bit levels and PSNR), so speed is weighed against
what it changes.

    python tests/bench/cycles_speed.py [--jobs 3] [--rounds 2] [--size 160 120] [--samples 16] [--variants NAME ...]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="synthfarm-bench-"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import synthfarm  # noqa: E402
from synthfarm.addon.core.recipe import load_recipe, recipe_from_data  # noqa: E402
from synthfarm.addon.engine.runner import Runner  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = {
    "factory": None,
    "adaptive_threshold 0.05": {"adaptive_threshold": 0.05},
    "adaptive_threshold 0.1": {"adaptive_threshold": 0.1},
    "max_bounces 4": {"max_bounces": 4},
    "light_tree false": {"light_tree": False},
    "denoise_quality balanced": {"denoise_quality": "balanced"},
    "denoise_quality fast": {"denoise_quality": "fast"},
    "persistent_data false": {"persistent_data": False},
    "threshold 0.05 + bounces 4": {"adaptive_threshold": 0.05, "max_bounces": 4},
    "world_map 512": {"world_map": 512},
    "world_map 256": {"world_map": 256},
    "world_map 64": {"world_map": 64},
    "world_map 0 (none)": {"world_map": 0},
}


def variant_recipe(base: dict, recipe_dir: Path, cycles: dict | None, size: tuple[int, int], samples: int):
    data = json.loads(json.dumps(base))
    sensor = data["sensors"][0]
    sensor.update(resolution=list(size), samples=samples)
    if cycles:
        sensor["cycles"] = cycles
    return recipe_from_data(data, base_dir=recipe_dir)


def render_seconds(out: Path) -> float:
    return sum(json.loads(p.read_text())["timings"]["render"] for p in (out / "metadata").glob("*-meta.json"))


def images(out: Path) -> list[np.ndarray]:
    return [cv2.imread(str(p)).astype(np.float64) for p in sorted((out / "images").glob("*.png"))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", type=int, nargs=2, default=(160, 120))
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--recipe", default=str(ROOT / "assets/recipes/toybox.yaml"))
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS)[1:], help="only these (and factory)")
    args = parser.parse_args()
    if args.variants:
        for name in set(VARIANTS) - {"factory", *args.variants}:
            del VARIANTS[name]

    path = Path(args.recipe)
    base = load_recipe(path).to_data()
    recipes = {name: variant_recipe(base, path.parent, cycles, tuple(args.size), args.samples)
               for name, cycles in VARIANTS.items()}
    work = Path(tempfile.mkdtemp(prefix="synthfarm-bench-"))
    runner = Runner()  # one warm process, as a farm worker
    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for r in range(args.rounds):  # warm-up: every scene once (Cycles keeps loaded images in persistent data)
        synthfarm.render(recipes["factory"], jobs=args.jobs, out=work / f"warm-{r}", seed=r, progress=False,
                         runner=runner)
    names = list(VARIANTS)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:  # each round starts elsewhere: no drift bias
            recipe = recipes[name]
            out = work / f"{r}-{list(VARIANTS).index(name)}"
            synthfarm.render(recipe, jobs=args.jobs, out=out, seed=r, progress=False, runner=runner)
            seconds[name].append(render_seconds(out))
    factory = seconds["factory"]
    print(f"toybox at {args.size[0]}x{args.size[1]}, {args.samples} samples, {args.jobs} jobs x {args.rounds} "
          f"interleaved rounds, one warm Runner; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"factory settings: render call {statistics.mean(factory) / args.jobs * 1000:.0f} ms per frame")
    print(f"{'variant':<28} {'render time / factory':>22} {'mean |diff| (8-bit)':>20} {'PSNR dB':>8}")
    for name in VARIANTS:
        ratio = statistics.median(s / f for s, f in zip(seconds[name], factory))
        diffs, psnrs = [], []
        for r in range(args.rounds):
            for a, b in zip(images(work / f"{r}-0"), images(work / f"{r}-{list(VARIANTS).index(name)}")):
                diffs.append(np.abs(a - b).mean())
                psnrs.append(cv2.PSNR(a, b))
        psnr = statistics.median(psnrs)
        print(f"{name:<28} {ratio:>22.2f} {statistics.mean(diffs):>20.2f} "
              f"{'same' if psnr >= 361 else f'{psnr:.1f}':>8}")


if __name__ == "__main__":
    main()
