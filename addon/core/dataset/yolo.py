"""YOLO (Ultralytics layout): ``data.yaml``, ``images/{train,val}``, ``labels/{train,val}``.

Detect labels are ``class cx cy w h`` and segment labels ``class x1 y1 x2 y2 ...``, all normalised to
[0, 1] by the image size. YOLO class indices start at 0: index = position in the class map's id order.
The train/val split is by a hash of each frame's name, so it is stable as a dataset grows.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from ..groundtruth import rle_decode
from .classmap import ClassMap
from .frames import Filters, frames, link_or_copy, mask_polygons
from .native import atomic_write_text


def split_of(stem: str, val_fraction: float) -> str:
    bucket = int.from_bytes(hashlib.sha256(stem.encode()).digest()[:4], "little") / 2 ** 32
    return "val" if bucket < val_fraction else "train"


def export(root: Path, out: Path, class_map: ClassMap, filters: Filters, segment: bool = False,
           val_fraction: float = 0.2) -> dict:
    counts = {"train": 0, "val": 0, "labels": 0}
    stems = []
    for frame in frames(root, class_map, filters):
        split = split_of(frame.stem, val_fraction)
        counts[split] += 1
        stems.append((split, frame))
        lines = []
        for obj, entry in frame.objects:  # indices are assigned once all classes are known (keep may add some)
            if segment:
                polygons = mask_polygons(rle_decode(obj["segmentation"]))
                if not polygons:
                    continue
                points = max(polygons, key=len)  # YOLO takes one polygon per instance: the largest part
                coords = [v / (frame.width if i % 2 == 0 else frame.height) for i, v in enumerate(points)]
                lines.append((entry.id, " ".join(f"{c:.6f}" for c in coords)))
            else:
                x, y, w, h = obj["bbox"]
                lines.append((entry.id, f"{(x + w / 2) / frame.width:.6f} {(y + h / 2) / frame.height:.6f} "
                                        f"{w / frame.width:.6f} {h / frame.height:.6f}"))
        frame.yolo_lines = lines
    classes = sorted(class_map.classes, key=lambda c: c.id)
    index_of = {c.id: i for i, c in enumerate(classes)}
    for split, frame in stems:
        image = frame.path("image")
        link_or_copy(image, out / "images" / split / image.name)
        text = "".join(f"{index_of[cid]} {rest}\n" for cid, rest in frame.yolo_lines)
        label = out / "labels" / split / f"{frame.stem}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(label, text)
        counts["labels"] += len(frame.yolo_lines)
    data = {"path": str(out.resolve()), "train": "images/train", "val": "images/val",
            "names": {i: c.name for i, c in enumerate(classes)}}
    if not counts["val"]:  # Ultralytics needs a val split: fall back to the training images
        data["val"] = "images/train"
    atomic_write_text(out / "data.yaml", yaml.safe_dump(data, sort_keys=False))
    return counts
