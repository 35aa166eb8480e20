"""The images of a set: a synthfarm dataset (its ``images/``) or any folder of pictures (searched
recursively), sampled reproducibly."""
from __future__ import annotations

import random
from pathlib import Path

from PIL import Image

SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


class CompareError(Exception):
    """A set cannot be compared as given; the message names it and what to change."""


def image_files(source: Path) -> list[Path]:
    """Every image of a set, sorted: a synthfarm dataset's rendered frames, else the pictures under a folder."""
    source = Path(source)
    if not source.is_dir():
        raise CompareError(f"{source} is not a folder; give a synthfarm dataset or a folder of images")
    root = source / "images" if (source / "dataset.yaml").is_file() else source
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise CompareError(f"{source} holds no images ({', '.join(sorted(SUFFIXES))})")
    return files


def sample(files: list[Path], count: int, seed: int = 0) -> list[Path]:
    """``count`` files drawn without replacement (all of them when there are fewer), in a fixed order."""
    if len(files) <= count:
        return list(files)
    return sorted(random.Random(seed).sample(files, count))


def load(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def thumbnail(image: Image.Image, size: int = 160) -> Image.Image:
    small = image.copy()
    small.thumbnail((size, size), Image.Resampling.LANCZOS)
    return small
