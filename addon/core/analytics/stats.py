"""What a dataset holds, read once from its files: one row per frame and one per visible object.

A frame row has its stem, job, frame, sensor, image size, parameters, the camera's viewpoint and every value
the randomizers and modifiers drew; an object row has its class, boxes, visibility, truncation, distance and
depth. The plots, the report and the notebook functions all work from these rows.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

DRAWN_BY = ("randomizers/", "modifiers/")  # components whose draws are plotted


@dataclass
class DatasetStats:
    root: Path
    jobs: int = 0  # jobs recorded in jobs.jsonl (asked for, whether rendered or not)
    frame_rows: list[dict] = field(default_factory=list)
    object_rows: list[dict] = field(default_factory=list)  # objects with at least one visible pixel
    requested: dict[str, list] = field(default_factory=dict)  # parameter -> its value in every job asked for
    draws: dict[str, dict[str, list]] = field(default_factory=dict)  # component -> field -> drawn values

    @property
    def frames(self) -> int:
        return len(self.frame_rows)

    @property
    def stems(self) -> list[str]:
        return [row["stem"] for row in self.frame_rows]

    @property
    def classes(self) -> Counter:
        return Counter(row["class"] for row in self.object_rows)

    @property
    def realised(self) -> dict[str, list]:
        """Parameter -> its value in every frame rendered."""
        out: dict[str, list] = {}
        for row in self.frame_rows:
            for name, value in row["params"].items():
                out.setdefault(name, []).append(value)
        return out

    def column(self, name: str, rows: str = "object") -> list:
        """One field of every object row (or frame row), leaving out rows without it."""
        source = self.object_rows if rows == "object" else self.frame_rows
        return [row[name] for row in source if row.get(name) is not None]


def read_jobs(root: Path) -> dict[int, dict]:
    """The latest jobs.jsonl record of every job (torn or foreign lines are skipped)."""
    latest: dict[int, dict] = {}
    path = Path(root) / "jobs.jsonl"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
                latest[int(record["id"])] = record
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
    return latest


def collect(root: Path, *, brightness: bool = True) -> DatasetStats:
    """Read a native dataset folder (``brightness=False`` skips opening the images)."""
    root = Path(root)
    stats = DatasetStats(root)
    jobs = read_jobs(root)
    stats.jobs = len(jobs)
    for record in jobs.values():
        for name, value in (record.get("parameters") or {}).items():
            stats.requested.setdefault(name, []).append(value)
    for ann_path in sorted((root / "annotations").glob("*-ann.json")):
        stem = ann_path.name.removesuffix("-ann.json")
        ann = json.loads(ann_path.read_text(encoding="utf-8"))
        meta_path = root / "metadata" / f"{stem}-meta.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        width, height = ann.get("image_size") or meta.get("camera", {}).get("resolution") or (0, 0)
        seen = [o for o in ann["objects"] if o.get("visible_pixels", 0) > 0]
        row = {"stem": stem, "job": ann.get("job"), "frame": ann.get("frame"), "sensor": ann.get("sensor"),
               "width": width, "height": height, "seed": meta.get("seed"), "params": meta.get("params", {}),
               "objects": len(seen), "coverage": sum(o["visible_pixels"] for o in seen) / max(1, width * height),
               **viewpoint(meta.get("camera", {}).get("cam_to_world"))}
        if brightness:
            row["brightness"] = image_brightness(root / "images" / f"{stem}.png")
        stats.frame_rows.append(row)
        for obj in seen:
            stats.object_rows.append(object_row(stem, obj, width, height))
        for component, fields in (meta.get("sampled") or {}).items():
            if component.startswith(DRAWN_BY):
                for name, value in fields.items():
                    stats.draws.setdefault(component, {}).setdefault(name, []).extend(_drawn_values(value))
    return stats


def object_row(stem: str, obj: dict, width: int, height: int) -> dict:
    x, y, w, h = obj["bbox"]
    pose = obj.get("pose") or {}
    return {"stem": stem, "name": obj.get("name"), "class": obj["class"], "generator": obj.get("generator"),
            "visible_pixels": obj["visible_pixels"], "bbox": obj["bbox"], "box_w": w, "box_h": h,
            "centre_x": (x + w / 2) / max(1, width), "centre_y": (y + h / 2) / max(1, height),
            "visibility": obj.get("visibility"), "truncation": obj.get("truncation"),
            "distance": obj.get("distance"), "depth": pose["t"][2] if pose.get("t") else None}


def viewpoint(cam_to_world) -> dict:
    """Where the camera looks from: the azimuth and elevation (degrees) of the direction opposite to its
    optical axis (elevation > 0 when it looks down), and its height (world z)."""
    if not cam_to_world:
        return {}
    matrix = np.asarray(cam_to_world, dtype=float)
    back = -matrix[:3, 2]  # OpenCV cameras look down their +z
    return {"cam_azimuth": math.degrees(math.atan2(back[1], back[0])),
            "cam_elevation": math.degrees(math.asin(max(-1.0, min(1.0, back[2])))),
            "cam_height": float(matrix[2, 3])}


def image_brightness(path: Path) -> float | None:
    """Mean luminance of an image, 0..1."""
    if not path.is_file():
        return None
    with Image.open(path) as im:
        return float(np.asarray(im.convert("L"), dtype=np.float32).mean() / 255.0)


def _drawn_values(value) -> list:
    """A sampled value as plottable values: numbers and words as they are, a per-object mapping as its
    values, a vector (a colour) as one label."""
    if isinstance(value, dict):
        return [v for item in value.values() for v in _drawn_values(item)]
    if isinstance(value, bool):
        return [str(value)]
    if isinstance(value, (int, float, str)):
        return [value]
    if isinstance(value, list):
        return [", ".join(f"{v:g}" if isinstance(v, (int, float)) else str(v) for v in value)]
    return []
