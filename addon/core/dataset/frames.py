"""Reading a native dataset back, frame by frame, with the filters every exporter applies."""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from .classmap import ClassEntry, ClassMap
from .native import FOLDERS

TRUNCATED = 0.01  # an object more than 1 % cut off by the image border counts as truncated


@dataclass
class Filters:
    """Which objects an export keeps. By default an object must have at least one visible pixel."""

    min_visibility: float = 0.0
    min_pixels: int = 1
    drop_truncated: bool = False
    ignore_classes: frozenset[str] = frozenset()

    @classmethod
    def from_spec(cls, spec) -> "Filters":
        """The filters of a recipe's ``output.filters``."""
        return cls(min_visibility=spec.min_visibility, min_pixels=spec.min_pixels,
                   drop_truncated=spec.drop_truncated, ignore_classes=frozenset(spec.ignore_classes))

    def keep(self, obj: dict) -> bool:
        return (obj.get("visible_pixels", 0) >= max(1, self.min_pixels)
                and obj.get("visibility", 1.0) >= self.min_visibility
                and not (self.drop_truncated and obj.get("truncation", 0.0) > TRUNCATED)
                and obj.get("class") not in self.ignore_classes)


@dataclass
class Frame:
    root: Path
    stem: str
    annotation: dict
    objects: list[tuple[dict, ClassEntry]] = field(default_factory=list)  # kept objects with their class

    @property
    def width(self) -> int:
        return int(self.annotation["image_size"][0])

    @property
    def height(self) -> int:
        return int(self.annotation["image_size"][1])

    def path(self, kind: str) -> Path:
        folder, suffix = FOLDERS[kind]
        return self.root / folder / f"{self.stem}{suffix}"

    @property
    def K(self) -> np.ndarray:
        return np.array(self.annotation["camera"]["K"])

    @property
    def world_to_cam(self) -> np.ndarray:
        return np.array(self.annotation["camera"]["world_to_cam"])


def dataset_labels(root: Path) -> list[str]:
    """The dataset's class list, from dataset.yaml or else from its first annotation."""
    import yaml

    info = yaml.safe_load((root / "dataset.yaml").read_text()) if (root / "dataset.yaml").is_file() else {}
    classes = (info.get("counts") or {}).get("classes")
    if classes:
        return list(classes)
    first = next(iter(sorted((root / "annotations").glob("*-ann.json"))), None)
    return json.loads(first.read_text())["classes"] if first else []


def frames(root: Path, class_map: ClassMap, filters: Filters) -> Iterator[Frame]:
    """Every complete frame (its annotation is in place), sorted, with the objects the filters keep."""
    root = Path(root)
    if not (root / "annotations").is_dir():
        raise FileNotFoundError(f"{root} holds no synthfarm dataset (no annotations/ folder)")
    for ann_path in sorted((root / "annotations").glob("*-ann.json")):
        annotation = json.loads(ann_path.read_text())
        frame = Frame(root, ann_path.name.removesuffix("-ann.json"), annotation)
        for obj in annotation["objects"]:
            entry = class_map.resolve(obj) if filters.keep(obj) else None
            if entry is not None:
                frame.objects.append((obj, entry))
        yield frame


def link_or_copy(source: Path, target: Path) -> None:
    """Put a dataset file into an export folder without duplicating its bytes when possible."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def keypoint_names(class_map: ClassMap, kept: list[Frame]) -> dict[int, list[str]]:
    """{class id: keypoint names in export order} of the classes with keypoints: the class map's order, else
    every name seen for that class, sorted."""
    seen: dict[int, set[str]] = {}
    for frame in kept:
        for obj, entry in frame.objects:
            if obj.get("keypoints"):
                seen.setdefault(entry.id, set()).update(k["name"] for k in obj["keypoints"])
    names = {c.id: list(c.keypoints) or sorted(seen.get(c.id, ())) for c in class_map.classes}
    return {cid: n for cid, n in names.items() if n}
