"""Benchmark: COCO polygons against the exact RLE masks, on the example recipes (preview renders).

    python tests/bench/coco_polygons.py [--jobs 4] [--out DIR]

Renders toybox and tabletop, exports `coco` (RLE) and `coco-polygons`, and prints per recipe: objects,
objects kept as RLE (a hole in the mask), the mask IoU of each polygon set (filled by pycocotools)
against the RLE (mean and worst; targets: mean >= 0.98, worst >= 0.95), the segm AP of the polygon
annotations scored as detections against the RLE ground truth, and the same figures for the baseline:
outer contours through pixel centres (OpenCV's trace as it is), every part, holes filled.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

ROOT = Path(__file__).resolve().parents[2]
RECIPES = [ROOT / "assets" / "recipes" / "toybox.yaml", ROOT / "assets" / "recipes" / "tabletop.yaml"]


def centre_polygons(mask: np.ndarray) -> list[list[float]]:
    """The baseline: OpenCV's outer contours, through pixel centres."""
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [(c.reshape(-1, 2) + 0.5).ravel().tolist() for c in contours if len(c) >= 3]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def segm_ap(gt: COCO, annotations: list[dict]) -> float:
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its tables
        detections = gt.loadRes([{**a, "score": 1.0} for a in annotations])
        evaluation = COCOeval(gt, detections, "segm")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[0])


def measure(ds: Path) -> dict:
    rows = {"ours": [], "baseline": []}
    kept_rle, objects, ap = 0, 0, {"ours": [], "baseline": []}
    for rle_file in sorted((ds / "coco" / "annotations").glob("instances_*.json")):
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO(str(rle_file))
        polygons = json.loads((ds / "coco-polygons" / "annotations" / rle_file.name).read_text())["annotations"]
        baseline = []
        for rle_ann, poly_ann in zip(gt.loadAnns(gt.getAnnIds()), polygons):
            exact = gt.annToMask(rle_ann).astype(bool)
            h, w = exact.shape
            objects += 1
            kept_rle += isinstance(poly_ann["segmentation"], dict)
            ours = coco_mask.decode(gt.annToRLE(poly_ann)).astype(bool)
            rows["ours"].append(iou(ours, exact))
            parts = centre_polygons(exact)
            base = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(parts, h, w))).astype(bool)
            rows["baseline"].append(iou(base, exact))
            baseline.append({**rle_ann, "segmentation": parts})
        ap["ours"].append(segm_ap(gt, polygons))
        ap["baseline"].append(segm_ap(gt, baseline))
    return {"objects": objects, "kept_rle": kept_rle,
            **{f"{k}_iou_mean": float(np.mean(v)) for k, v in rows.items()},
            **{f"{k}_iou_min": float(np.min(v)) for k, v in rows.items()},
            **{f"{k}_segm_ap": float(np.mean(v)) for k, v in ap.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="synthfarm-bench-polygons-"))
    for recipe in RECIPES:
        ds = out / recipe.stem
        subprocess.run([sys.executable, "-m", "synthfarm.cli", "render", str(recipe), "--jobs", str(args.jobs),
                        "--preview", "--seed", "3", "--out", str(ds)], check=True, capture_output=True)
        subprocess.run([sys.executable, "-m", "synthfarm.cli", "convert", str(ds), "--to", "coco,coco-polygons"],
                       check=True, capture_output=True)
        m = measure(ds)
        print(f"{recipe.stem}: {m['objects']} objects, {m['kept_rle']} kept as RLE (holes)")
        print(f"  polygon vs RLE mask IoU: mean {m['ours_iou_mean']:.4f} (target >= 0.98), worst "
              f"{m['ours_iou_min']:.4f} (target >= 0.95); segm AP {m['ours_segm_ap']:.3f}")
        print(f"  baseline (centres):      mean {m['baseline_iou_mean']:.4f}, worst {m['baseline_iou_min']:.4f}; "
              f"segm AP {m['baseline_segm_ap']:.3f}; ratio of mean IoU ours/baseline "
              f"{m['ours_iou_mean'] / m['baseline_iou_mean']:.3f}")


if __name__ == "__main__":
    main()
