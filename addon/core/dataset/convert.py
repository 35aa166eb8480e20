"""Exports of a native dataset to other formats (``synthfarm convert`` and the end of ``render``)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from . import bop, coco, kitti, tracking, voc, yolo
from .classmap import ClassMap, load_class_map
from .frames import Filters, dataset_labels

log = logging.getLogger(__name__)

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
    for name in formats:
        if name == "native":
            continue
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


def export_for_recipe(recipe, base_dir: Path | None, out: Path) -> dict:
    """Run the exporters a recipe's ``output`` section asks for on the dataset in ``out``."""
    from ..recipe import resolve_path

    spec = recipe.output
    filters = Filters(min_visibility=spec.filters.min_visibility, min_pixels=spec.filters.min_pixels,
                      drop_truncated=spec.filters.drop_truncated, ignore_classes=frozenset(spec.filters.ignore_classes))
    class_map = resolve_path(spec.class_map, base_dir) if spec.class_map else None
    return convert(out, spec.formats, class_map=class_map, filters=filters, val_fraction=spec.val_fraction)
