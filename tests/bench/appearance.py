"""Benchmark: what appearance costs, and how the example images look in numbers.

1. Time per frame of the toybox recipe at the preview tier (640x480 recipe, so 320x240 renders, 4 samples)
   in three variants run in this process: flat colours (its procedural materials replaced by plain
   colour variation), with its procedural materials, and with materials plus a full set of image effects.
   The effects' own time (``timings.effects`` of each frame) is printed as a fraction of the frame
   (target: < 5 %).
2. For each example recipe at full quality (a few jobs): the mean fraction of pixels with a clipped
   channel (target < 1 %) and the estimated noise sigma (8-bit levels, Immerkaer's method).

    python tests/bench/appearance.py [--jobs 3] [--quality-jobs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="synthfarm-bench-"))

import numpy as np  # noqa: E402

import synthfarm  # noqa: E402
from synthfarm.addon.core import effects  # noqa: E402
from synthfarm.addon.core.dataset.native import read_png  # noqa: E402
from synthfarm.addon.core.recipe import load_recipe, recipe_from_data  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TOYBOX = ROOT / "assets/recipes/toybox.yaml"
EFFECTS = {"kind": "image_effects", "gain": {"uniform": [0.8, 1.2]}, "white_balance": {"uniform": [0.9, 1.1]},
           "vignetting": 0.3, "chromatic_shift": 1.0, "blur": {"uniform": [0.3, 1.0]}, "motion_blur": 3.0,
           "photons": 2000, "noise": 0.01, "jpeg_quality": 85}


def frames(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "metadata").glob("*-meta.json"))]


def run(data: dict, jobs: int, preview: bool) -> tuple[Path, list[dict], float]:
    out = Path(tempfile.mkdtemp(prefix="synthfarm-bench-appearance-"))
    summary = synthfarm.render(recipe_from_data(data, base_dir=TOYBOX.parent), jobs=jobs, out=out, seed=1,
                               preview=preview, progress=False)
    return out, frames(out), summary.seconds / max(1, summary.frames)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--quality-jobs", type=int, default=3)
    args = parser.parse_args()
    base = load_recipe(TOYBOX).to_data()
    flat = {**base, "modifiers": [{"kind": "color_variation", "targets": ["toys"], "hue": {"uniform": [0, 1]}}]}
    with_effects = {**base, "randomizers": base["randomizers"] + [EFFECTS]}
    print("toybox, preview tier (320x240, 4 samples), seconds per frame:")
    reference = None
    for name, data in (("flat colours", flat), ("procedural materials", base), ("materials + effects", with_effects)):
        run(data, 1, True)  # warm-up: imports, asset cache
        _, metas, per_frame = run(data, args.jobs, True)
        render = statistics.mean(m["timings"]["render"] for m in metas)
        fx = statistics.mean(m["timings"].get("effects", 0.0) for m in metas)
        reference = reference or per_frame
        print(f"  {name:22s} {per_frame:6.2f} s/frame ({per_frame / reference:4.2f}x)  render {render:5.2f} s  "
              f"effects {fx * 1000:6.1f} ms = {fx / per_frame:6.2%} of the frame")
    print("examples at full quality: clipped pixels (a channel at 0 or 255) and noise sigma (8-bit levels)")
    for path in sorted((ROOT / "assets/recipes").glob("*.yaml")):
        data = load_recipe(path).to_data()
        out = Path(tempfile.mkdtemp(prefix="synthfarm-bench-quality-"))
        synthfarm.render(path, jobs=args.quality_jobs, out=out, seed=0, progress=False)
        images = [read_png(p) for p in sorted((out / "images").glob("*.png"))]
        clipped = [effects.clipped_fraction(i) for i in images]
        noise = [effects.noise_sigma(i) for i in images]
        print(f"  {data['name']:12s} {len(images)} images: clipped {np.mean(clipped):6.2%} (max {max(clipped):6.2%}), "
              f"noise sigma {np.mean(noise):5.2f}")


if __name__ == "__main__":
    main()
