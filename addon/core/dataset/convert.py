"""Exports of a native dataset to other formats (``synthfarm convert`` and the end of ``render``).

Each export is written into a fresh hidden folder beside its target and then renamed into place, so a
reader sees the previous export or the new one, never half of one, and nothing of an earlier export
survives. The recipe's ``output`` section (filters, val_fraction, class map) applies unless the caller
says otherwise. Splits are computed once and shared by every format that has splits.
"""
from __future__ import annotations

import dataclasses
import logging
import secrets
import shutil
from pathlib import Path
from typing import Callable

from . import bop, coco, kitti, lock, tracking, voc, yolo
from .classmap import ClassMap, load_class_map
from .frames import Filters, dataset_labels, frames
from .native import DatasetError, require_dataset
from .splits import assign_splits

log = logging.getLogger(__name__)

NO_DISTORTION = ("kitti", "bop")  # formats whose camera model is a pinhole K
# format name -> (exporter, its options)
EXPORTERS: dict[str, tuple[Callable, dict]] = {
    "coco": (coco.export, {}),
    "coco-polygons": (coco.export, {"polygons": True}),
    "yolo": (yolo.export, {}),
    "yolo-seg": (yolo.export, {"segment": True}),
    "yolo-pose": (yolo.export, {"pose": True}),
    "kitti": (kitti.export, {}),
    "voc": (voc.export, {}),
    "bop": (bop.export, {}),
    "mot": (tracking.export_mot, {}),
    "coco-video": (tracking.export_coco_video, {}),
}
FORMATS = ("native", *EXPORTERS)
WITH_SPLITS = (coco.export, yolo.export, voc.export)
CLASS_MAP_FILE = "class_map.yaml"  # the recipe's class map, copied into the dataset by the render
STAGING_PREFIX = ".export-"


class ConvertError(DatasetError):
    pass


@dataclasses.dataclass
class ExportSettings:
    """What an export keeps and how it splits: the recipe's output section unless overridden."""

    filters: Filters
    val_fraction: float
    test_fraction: float = 0.0
    class_map: ClassMap | None = None


def recipe_settings(root: Path) -> ExportSettings:
    """The export settings of the recipe a dataset was rendered from (its recipe.yaml)."""
    from ..recipe import RecipeError, parse_recipe_text

    root = Path(root)
    try:
        recipe = parse_recipe_text((root / "recipe.yaml").read_text(encoding="utf-8"), None,
                                   str(root / "recipe.yaml"), check_files=False)
    except (OSError, RecipeError) as err:
        raise ConvertError(f"{root}: cannot read the dataset's recipe.yaml ({err})") from None
    spec = recipe.output
    class_map = None
    if (root / CLASS_MAP_FILE).is_file():
        class_map = load_class_map(root / CLASS_MAP_FILE)
    elif spec.class_map:
        raise ConvertError(f"the recipe names the class map {spec.class_map!r}, but {root} holds no copy of it "
                           f"({CLASS_MAP_FILE}); pass it with --class-map")
    return ExportSettings(Filters.from_spec(spec.filters), spec.val_fraction, spec.test_fraction, class_map)


def convert(root: Path, formats: list[str], *, class_map: str | Path | ClassMap | None = None,
            filters: Filters | None = None, val_fraction: float | None = None, test_fraction: float | None = None,
            out: Path | None = None) -> dict[str, dict]:
    """Write each format under ``out/<format>/`` (default: inside the dataset), replacing what was
    there. Each setting left None is the recipe's (its ``output`` section). Returns counts per format."""
    root = Path(root)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ConvertError(f"unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    require_dataset(root)
    settings = recipe_settings(root)
    for name, value in (("filters", filters), ("val_fraction", val_fraction), ("test_fraction", test_fraction),
                        ("class_map", load_class_map(class_map) if isinstance(class_map, (str, Path)) else class_map)):
        if value is not None:
            setattr(settings, name, value)
    results = {}
    distorted = _distorted_lens(root) if set(formats) & set(NO_DISTORTION) else None
    with lock.writing(root, "export it"):
        splits = None
        for name in formats:
            if name == "native":
                continue
            if name in NO_DISTORTION and distorted:
                log.warning("%s: the images were taken through a %s lens, but %s's camera is a pinhole K: its 2D "
                            "labels are right for the images, projecting its 3D labels with K alone is not; the "
                            "coefficients are in annotations/*-ann.json (camera.lens) and in the coco-video export",
                            name, distorted, name)
            cmap = _class_map(root, settings.class_map)
            export, options = EXPORTERS[name]
            if export in WITH_SPLITS:
                splits = splits or frame_splits(root, cmap.model_copy(deep=True), settings)
                options = {**options, "splits": splits}
            target = Path(out or root) / name
            with _replacing(target) as staging:
                results[name] = export(root, staging, cmap, settings.filters, **options)
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


def frame_splits(root: Path, class_map: ClassMap, settings: ExportSettings) -> dict[str, str]:
    held = {frame.stem: {entry.name for _, entry in frame.objects} for frame in frames(root, class_map, settings.filters)}
    return assign_splits(held, settings.val_fraction, settings.test_fraction)


def _class_map(root: Path, class_map: ClassMap | None) -> ClassMap:
    if class_map is not None:
        return class_map.model_copy(deep=True)  # exporters may add classes (unmatched: keep)
    return ClassMap.default(dataset_labels(root))


class _replacing:
    """A fresh folder to export into; on success it replaces ``target`` (two renames: the old export is
    moved aside, the new one in, the old one deleted), on failure it is deleted and ``target`` stays."""

    def __init__(self, target: Path):
        self.target = Path(target)

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        for stale in self.target.parent.glob(f"{STAGING_PREFIX}{self.target.name}-*"):  # a crashed convert's
            shutil.rmtree(stale, ignore_errors=True)
        self.staging = self.target.parent / f"{STAGING_PREFIX}{self.target.name}-{secrets.token_hex(4)}"
        self.staging.mkdir()
        return self.staging

    def __exit__(self, kind, error, tb):
        if kind is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            return False
        old = None
        if self.target.exists():
            old = self.target.parent / f"{STAGING_PREFIX}{self.target.name}-old-{secrets.token_hex(4)}"
            self.target.rename(old)
        self.staging.rename(self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return False


def export_for_recipe(recipe, base_dir: Path | None, out: Path) -> dict:
    """Run the exporters a recipe's ``output`` section asks for on the dataset in ``out``; its class map
    is copied into the dataset first, so that a later ``synthfarm convert`` uses it too."""
    from ..recipe import resolve_path
    from .native import atomic_write_text

    spec = recipe.output
    class_map = None
    if spec.class_map:
        source = resolve_path(spec.class_map, base_dir)
        class_map = load_class_map(source)
        atomic_write_text(Path(out) / CLASS_MAP_FILE, source.read_text(encoding="utf-8"))
    return convert(out, spec.formats, class_map=class_map, filters=Filters.from_spec(spec.filters),
                   val_fraction=spec.val_fraction, test_fraction=spec.test_fraction)
