"""Benchmark: labels for 50 objects at 640x480 (target: under 20 ms per frame).

Renders the toybox recipe with 49 toys plus the box (1 sample: the render is not what is measured) and
reads each frame's ``timings.labels`` from its metadata: visible masks, boxes and RLE, amodal
rasterisation, visibility, truncation, pose, 3D boxes and keypoints of every object, and the semantic
mask. Also times the visible-mask part alone (instances_from_mask), and, as the baseline in the same run, one
full-image comparison per object (what a per-object loop over the mask costs at least).

    python tests/bench/groundtruth.py [--jobs 5]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import timeit
from pathlib import Path

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="synthfarm-bench-"))

import numpy as np  # noqa: E402
import yaml  # noqa: E402

import synthfarm  # noqa: E402
from synthfarm.addon.core.dataset.native import read_png  # noqa: E402
from synthfarm.addon.core.groundtruth import instances_from_mask  # noqa: E402
from synthfarm.addon.core.recipe import load_recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=5)
    args = parser.parse_args()
    recipe_path = ROOT / "assets/recipes/toybox.yaml"
    data = load_recipe(recipe_path).to_data()
    data["parameters"]["num_toys"]["max"] = 49
    data["sensors"][0]["samples"] = 1
    patched = recipe_path.parent / f".bench-{os.getpid()}.yaml"
    patched.write_text(yaml.safe_dump(data))
    out = Path(tempfile.mkdtemp(prefix="synthfarm-bench-")) / "out"
    try:
        synthfarm.render(patched, jobs=args.jobs, out=out, params={"num_toys": 49}, progress=False)
    finally:
        patched.unlink(missing_ok=True)
    labels_ms, mask_ms, base_ms, counts = [], [], [], []
    for meta_path in sorted((out / "metadata").glob("*-meta.json")):
        meta = json.loads(meta_path.read_text())
        labels_ms.append(meta["timings"]["labels"] * 1000)
        stem = meta_path.name.removesuffix("-meta.json")
        ann = json.loads((out / "annotations" / f"{stem}-ann.json").read_text())
        counts.append(len(ann["objects"]))
        index = read_png(out / "masks" / f"{stem}.png").astype(np.int32)
        mask_ms.append(min(timeit.repeat(lambda index=index: instances_from_mask(index, range(1, 51)), number=1, repeat=5)) * 1000)
        base_ms.append(min(timeit.repeat(lambda index=index: [index == i for i in range(1, 51)], number=1,
                                         repeat=5)) * 1000)
    base = statistics.mean(base_ms)
    print(f"frames {len(labels_ms)}, objects per frame {statistics.mean(counts):.0f}, resolution 640x480; load "
          f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"baseline: one full-image comparison per object (index == id, 50 ids): mean {base:6.1f} ms")
    print(f"all labels per frame:       mean {statistics.mean(labels_ms):6.1f} ms, max {max(labels_ms):6.1f} ms "
          f"({statistics.mean(labels_ms) / base:.2f} x baseline; target < 20 ms)")
    print(f"visible masks only:         mean {statistics.mean(mask_ms):6.1f} ms ({statistics.mean(mask_ms) / base:.2f} "
          "x baseline)")


if __name__ == "__main__":
    main()
