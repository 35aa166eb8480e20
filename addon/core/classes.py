"""The class list of a dataset: every class a recipe can produce, with stable ids 1..N.

Order: classes as they appear in the recipe's generators (an ``asset_name`` generator contributes its
asset names, sorted), then labels found on the base scene's objects, sorted. Id 0 is background.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from .components import FILE_DOMAINS
from .recipe import Recipe
from .values import file_members

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
        if gen.kind == "distractors":  # never labelled
            continue
        if gen.class_from == "asset_name":
            if gen.kind == "asset" and gen.object:
                add(gen.object)
            elif gen.kind in ("asset", "asset_dir"):
                for member in sorted(file_members(gen.source, FILE_DOMAINS["source"], base_dir),
                                     key=lambda m: Path(m).name):
                    add(Path(member).stem)
            elif gen.kind == "primitive":
                add(gen.shape)
        else:
            add(gen.class_)
    for name in sorted(set(extra) - set(names)):
        add(name)
    return names
