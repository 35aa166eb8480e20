"""The class list of a dataset: every class a recipe can produce, with stable ids 1..N.

Order: classes as they appear in the recipe's generators (an ``asset_name`` generator contributes its
asset names, sorted), then labels found on the base scene's objects, sorted. Id 0 is background.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from .recipe import Recipe, resolve_path

ASSET_EXTENSIONS = (".blend", ".obj", ".ply", ".stl", ".glb", ".gltf")


def asset_files(directory: Path) -> list[Path]:
    """Supported asset files in a folder, sorted by name (the same order on every machine)."""
    return sorted(p for p in directory.iterdir() if p.suffix.lower() in ASSET_EXTENSIONS and p.is_file())


def dataset_classes(recipe: Recipe, base_dir: Path | None, extra: Iterable[str] = ()) -> list[str]:
    names: list[str] = []

    def add(name):
        if name and name not in names:
            names.append(name)

    for gen in recipe.generators:
        if gen.class_from == "asset_name":
            if gen.kind == "asset_dir":
                for path in asset_files(resolve_path(gen.source, base_dir)):
                    add(path.stem)
            elif gen.kind == "asset":
                add(gen.object or Path(gen.source).stem)
            elif gen.kind == "primitive":
                add(gen.shape)
        else:
            add(gen.class_)
    for name in sorted(set(extra) - set(names)):
        add(name)
    return names
