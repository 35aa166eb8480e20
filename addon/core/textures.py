"""Texture sets: a folder of PBR maps named in the common conventions, read into {map: file}.

ambientCG names a map by its last word (``Bricks076C_1K-JPG_Color.jpg``, ``_Roughness``, ``_Metalness``,
``_NormalGL`` / ``_NormalDX``, ``_Displacement``, ``_AmbientOcclusion``); Poly Haven by a word in the middle
(``brick_wall_diff_1k.jpg``, ``_rough_``, ``_metal_``, ``_nor_gl_`` / ``_nor_dx_``, ``_arm_`` (AO, roughness,
metal in R, G, B), ``_disp_``, ``_ao_``). Images: jpg, png, exr (also tif, webp). Pure Python.
"""
from __future__ import annotations

import re
from pathlib import Path

IMAGE_TYPES = (".jpg", ".jpeg", ".png", ".exr", ".tif", ".tiff", ".webp")
# map -> the words that name it (lower case); normals also by two words in a row (nor gl)
WORDS = {
    "color": ("color", "col", "diff", "diffuse", "albedo", "basecolor", "basecolour", "colour"),
    "roughness": ("roughness", "rough"),
    "metalness": ("metalness", "metal", "metallic"),
    "normal_gl": ("normalgl", "nor_gl", "normal_gl", "normal"),
    "normal_dx": ("normaldx", "nor_dx", "normal_dx"),
    "displacement": ("displacement", "disp", "height"),
    "ao": ("ambientocclusion", "ao"),
    "arm": ("arm",),
}
MAPS = tuple(WORDS)


class TextureSetError(ValueError):
    pass


def map_kind(path: Path) -> str | None:
    """Which map a file is, from its name, or None."""
    if path.suffix.lower() not in IMAGE_TYPES:
        return None
    words = [w for w in re.split(r"[_\-. ]+", path.stem.lower()) if w]
    names = {name: kind for kind, names in WORDS.items() for name in names}
    for i in range(len(words) - 1, -1, -1):  # the map word comes last (ambientCG) or before the size (Poly Haven)
        pair = f"{words[i - 1]}_{words[i]}" if i else None
        if pair in names:
            return names[pair]
        if words[i] in names:
            return names[words[i]]
    return None


def read_texture_set(folder: Path) -> dict[str, Path]:
    """{map: file} of a texture-set folder (the first file by name wins when a map has several, jpg/png
    before exr). Raises TextureSetError naming the folder when it has no colour map."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TextureSetError(f"texture set {str(folder)!r} is not a folder")
    found: dict[str, Path] = {}
    files = sorted((p for p in folder.iterdir() if p.is_file()), key=lambda p: (p.suffix.lower() == ".exr", p.name))
    for path in files:
        kind = map_kind(path)
        if kind and kind not in found:
            found[kind] = path
    if "color" not in found:
        names = ", ".join(p.name for p in files[:8]) or "nothing"
        raise TextureSetError(f"texture set {str(folder)!r} has no colour map (a file named like *_Color.jpg or "
                              f"*_diff_1k.jpg); it holds {names}")
    return found
