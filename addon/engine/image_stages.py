"""After the render, before writing: backplates behind the scene and camera effects on the RGB image.

Both are randomizers of the recipe (``backplate``, ``image_effects``) whose draws happen per frame and
sensor, from their own streams, recorded under ``<sensor>/<frame>``. The index, depth and normal passes
never pass through here: masks, boxes and depth are those of the render.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..core import effects
from ..core.components import FILE_DOMAINS
from ..core.sampling import Sampler
from ..core.values import resolve_member

STAGES = ("backplate", "image_effects")


def image_stages(recipe, sensor: str) -> list:
    """The backplates and effects that apply to ``sensor``, in recipe order."""
    return [rnd for rnd in recipe.randomizers if rnd.kind in STAGES and rnd.sensor in (None, sensor)]


def apply_image_stages(stages, png: Path, sampler: Sampler, *, base_dir: Path | None, item: str) -> None:
    """Rewrite the rendered PNG (RGBA when a backplate is behind) as the RGB image with every stage applied."""
    with Image.open(png) as image:
        pixels = np.asarray(image)
    height, width = pixels.shape[:2]
    for rnd in stages:
        stream = sampler.stream(f"randomizers/{rnd.name}")
        if rnd.kind == "backplate":
            member = stream.draw_file("images", rnd.images, FILE_DOMAINS["images"], base_dir, item)
            where = stream.record("where", [float(x) for x in stream.rng.uniform(0, 1, size=2)], item)
            flip = stream.record("flipped", bool(stream.rng.uniform() < stream.draw("flip", rnd.flip, item)), item)
            plate = effects.cover_crop(effects.load_image(resolve_member(member, base_dir)), (width, height),
                                       stream.draw("zoom", rnd.zoom, item), where, flip)
            pixels = effects.over(pixels, plate)
        else:
            params = {field: stream.draw(field, getattr(rnd, field), item) for field in (*effects.EFFECTS, "motion_angle")
                      if getattr(rnd, field) is not None and (field != "motion_angle" or rnd.motion_blur is not None)}
            pixels = effects.apply_effects(pixels[..., :3], params, stream.rng)
    Image.fromarray(np.ascontiguousarray(pixels[..., :3])).save(png, format="PNG", compress_level=1)
