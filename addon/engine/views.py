"""From a pinhole render to the sensor's image: the view of each camera (see :mod:`..core.lens`), set up
on the Blender camera before the render and applied to every pass after it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..core.lens import View, render_view
from . import sensors


class Views:
    """The :class:`View` of each lens, made once and kept for the next jobs (its maps cost tens of ms)."""

    KEEP = 16

    def __init__(self):
        self._views: dict[tuple, View] = {}

    def clear(self) -> None:
        self._views.clear()

    def of(self, camera_obj, resolution: tuple[int, int]) -> View:
        lens = sensors.view_lens(camera_obj, resolution)
        key = (lens.size, lens.model, lens.coeffs, tuple(lens.K.ravel()))
        if key not in self._views:
            if len(self._views) >= self.KEEP:
                self._views.pop(next(iter(self._views)))
            self._views[key] = render_view(lens)
        return self._views[key]


def to_image(view: View, passes, rgb_path: Path):
    """Remap a render's RGB file and passes onto the view's image: colour bilinear, every id, depth and
    normal nearest (never blended)."""
    if view.identity:
        return passes
    with Image.open(rgb_path) as image:
        pixels = np.asarray(image)  # RGB, or RGBA when a backplate goes behind (its alpha is remapped too)
    Image.fromarray(view.linear(pixels)).save(rgb_path, format="PNG", compress_level=1)
    passes.depth = view.nearest(passes.depth, fill=np.inf)
    passes.normals = view.nearest(passes.normals, fill=0.0)
    passes.index = view.nearest(passes.index, fill=0)
    passes.resolution = view.lens.size
    return passes
