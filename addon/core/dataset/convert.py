"""Exports of a native dataset to other formats (``synthfarm convert`` and the end of ``render``)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from . import bop, coco, kitti, tracking, voc, yolo
from .classmap import ClassMap, load_class_map
from .frames import Filters, dataset_labels

log = logging.getLogger(__name__)

NO_DISTORTION = ("kitti", "bop")  # formats whose camera model is a pinhole K
# format name -> (exporter, its options)
EXPORTERS: dict[str, tuple[Callable, dict]] = {
    "coco": (coco.export, {}),
    "coco-polygons": (coco.export, {"polygons": True}),
    "yolo": (yolo.export, {}),
    "yolo-seg": (yolo.export, {"segment": True}),
    "kitti": (kitti.export, {}),
    "voc": (voc.export, {}),
    "bop": (bop.export, {}),
    "mot": (tracking.export_mot, {}),
    "coco-video": (tracking.export_coco_video, {}),
}
FORMATS = ("native", *EXPORTERS)


class ConvertError(ValueError):
    pass


def convert(root: Path, formats: list[str], *, class_map: str | Path | ClassMap | None = None,
            filters: Filters | None = None, val_fraction: float = 0.2, out: Path | None = None) -> dict[str, dict]:
    """Write each format under ``out/<format>/`` (default: inside the dataset). Returns counts per format."""
    root = Path(root)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ConvertError(f"unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    filters = filters or Filters()
    results = {}
    distorted = _distorted_lens(root) if set(formats) & set(NO_DISTORTION) else None
    for name in formats:
        if name == "native":
            continue
        if name in NO_DISTORTION and distorted:
            log.warning("%s: the images were taken through a %s lens, but %s's camera is a pinhole K: its 2D labels "
                        "are right for the images, projecting its 3D labels with K alone is not; the coefficients "
                        "are in annotations/*-ann.json (camera.lens) and in the coco-video export", name, distorted,
                        name)
        if isinstance(class_map, ClassMap):
            cmap = class_map.model_copy(deep=True)
        elif class_map:
            cmap = load_class_map(class_map)
        else:
            cmap = ClassMap.default(dataset_labels(root))
        target = Path(out or root) / name
        export, options = EXPORTERS[name]
        if export is yolo.export:
            options = {**options, "val_fraction": val_fraction}
        results[name] = export(root, target, cmap, filters, **options)
        log.info("%s: %s -> %s", name, results[name], target)
    return results


def _distorted_lens(root: Path) -> str | None:
    """The lens model of the dataset's first distorted frame, if any frame is distorted."""
    import json

    for path in sorted((Path(root) / "annotations").glob("*-ann.json")):
        model = (json.loads(path.read_text()).get("camera", {}).get("lens") or {}).get("model", "pinhole")
        if model != "pinhole":
            return model
    return None


def export_for_recipe(recipe, base_dir: Path | None, out: Path) -> dict:
    """Run the exporters a recipe's ``output`` section asks for on the dataset in ``out``."""
    from ..recipe import resolve_path

    spec = recipe.output
    filters = Filters(min_visibility=spec.filters.min_visibility, min_pixels=spec.filters.min_pixels,
                      drop_truncated=spec.filters.drop_truncated, ignore_classes=frozenset(spec.filters.ignore_classes))
    class_map = resolve_path(spec.class_map, base_dir) if spec.class_map else None
    return convert(out, spec.formats, class_map=class_map, filters=filters, val_fraction=spec.val_fraction)
