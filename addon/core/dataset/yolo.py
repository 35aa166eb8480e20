"""YOLO (Ultralytics layout): ``data.yaml``, ``images/<split>/``, ``labels/<split>/``.

Detect labels are ``class cx cy w h``; segment labels ``class x1 y1 x2 y2 ...`` (one polygon per
instance through the pixel corners of every part, parts and holes joined by zero-width bridges as
Ultralytics' own COCO converter joins parts); pose labels ``class cx cy w h x1 y1 v1 ...`` for the classes
with keypoints (``kpt_shape`` and ``flip_idx`` in data.yaml; left/right pairs found by name). All
coordinates are normalised to [0, 1] by the image size. Class indices start at 0, in the class map's id
order. ``data.yaml`` holds no ``path``: Ultralytics then takes the folders relative to the file itself,
so the export can move. The splits are the ones every export shares (see splits.py).
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from ..groundtruth import rle_decode
from .classmap import ClassMap
from .frames import Filters, frames, keypoint_names, link_or_copy
from .native import atomic_write_text
from .polygons import merge_parts, trace
from .splits import SPLITS

SIDES = [("left", "right"), ("Left", "Right"), ("LEFT", "RIGHT"), ("l_", "r_"), (".L", ".R"), ("_L", "_R"),
         ("_l", "_r"), (".l", ".r")]


def flip_index(names: list[str]) -> list[int]:
    """For each keypoint, the index of its mirror image (its left/right counterpart by name, else itself)."""
    out = []
    for name in names:
        twin = name
        for left, right in SIDES:
            if left in name or right in name:
                swapped = re.sub(re.escape(left), "\0", name)
                swapped = swapped.replace(right, left).replace("\0", right)
                if swapped in names:
                    twin = swapped
                    break
        out.append(names.index(twin))
    return out


def _box(obj: dict, width: int, height: int) -> list[float]:
    x, y, w, h = obj["bbox"]
    return [(x + w / 2) / width, (y + h / 2) / height, w / width, h / height]


def _segment(obj: dict, width: int, height: int) -> list[float] | None:
    outline = trace(rle_decode(obj["segmentation"]))
    if not outline.parts:
        return None
    points = merge_parts(outline.parts + outline.holes)
    return [v for x, y in points for v in (x / width, y / height)]


def _pose(obj: dict, names: list[str], kpt_count: int, width: int, height: int) -> list[float]:
    points = {k["name"]: k for k in obj.get("keypoints") or []}
    values = []
    for name in names:
        p = points.get(name)
        values += [p["x"] / width, p["y"] / height, p["v"]] if p and p["v"] else [0.0, 0.0, 0]
    return values + [0.0, 0.0, 0] * (kpt_count - len(names))


def export(root: Path, out: Path, class_map: ClassMap, filters: Filters, splits: dict[str, str],
           segment: bool = False, pose: bool = False) -> dict:
    kept = list(frames(root, class_map, filters))
    names = keypoint_names(class_map, kept) if pose else {}
    classes = sorted((c for c in class_map.classes if not pose or c.id in names), key=lambda c: c.id)
    index_of = {c.id: i for i, c in enumerate(classes)}
    kpt_count = max((len(n) for n in names.values()), default=0)
    counts = {split: 0 for split in SPLITS} | {"labels": 0}
    for frame in kept:
        split = splits[frame.stem]
        lines = []
        for obj, entry in frame.objects:
            if entry.id not in index_of:  # pose: a class without keypoints
                continue
            values = _box(obj, frame.width, frame.height)
            if segment:
                values = _segment(obj, frame.width, frame.height)
                if values is None:
                    continue
            elif pose:
                values += _pose(obj, names[entry.id], kpt_count, frame.width, frame.height)
            lines.append(f"{index_of[entry.id]} " + " ".join(f"{v:.6f}" if isinstance(v, float) else str(v)
                                                              for v in values))
        image = frame.path("image")
        link_or_copy(image, out / "images" / split / image.name)
        label = out / "labels" / split / f"{frame.stem}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(label, "".join(f"{line}\n" for line in lines))
        counts[split] += 1
        counts["labels"] += len(lines)
    # no "path": Ultralytics then reads the folders beside data.yaml; without frames in val, train is used
    data = {"train": "images/train", "val": "images/val" if counts["val"] else "images/train",
            **({"test": "images/test"} if counts["test"] else {}),
            "names": {i: c.name for i, c in enumerate(classes)}}
    if pose:
        if not kpt_count:
            raise ValueError("yolo-pose: no class of this dataset has keypoints (name child empties or vertex "
                             "groups kp:<name>, or list them in the class map)")
        order = names[classes[0].id]
        data.update(kpt_shape=[kpt_count, 3], flip_idx=flip_index(order + [f"#{i}" for i in range(len(order),
                                                                                                    kpt_count)]),
                    kpt_names={i: names[c.id] for i, c in enumerate(classes)})
    atomic_write_text(out / "data.yaml", yaml.safe_dump(data, sort_keys=False))
    if not counts["test"]:
        del counts["test"]
    return counts
