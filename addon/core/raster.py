"""Rasterising projected triangles with numpy: the amodal silhouette of an object without a render.

A pixel is covered when its centre (col + 0.5, row + 0.5) lies inside a triangle, which is the same
single point sample the Object Index pass takes, so for an unoccluded object the raster equals the
rendered mask up to ties on edges. All triangles of an object are handled in one vectorised pass.
"""
from __future__ import annotations

import numpy as np


def rasterize(triangles: np.ndarray, width: int, height: int, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Coverage mask (height, width) of triangles given in pixel coordinates, shape (T, 3, 2).

    ``origin`` is the pixel coordinate of the canvas's top-left pixel (it may lie outside the image,
    e.g. to measure how much of an object is cut off by the image border)."""
    mask = np.zeros((height, width), dtype=bool)
    tri = np.asarray(triangles, dtype=np.float64).reshape(-1, 3, 2) - np.asarray(origin, dtype=np.float64)
    if tri.size == 0:
        return mask
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    keep = np.abs(area) > 1e-12
    tri, area = tri[keep], area[keep]
    if tri.size == 0:
        return mask
    lo, hi = tri.min(axis=1), tri.max(axis=1)
    c0 = np.clip(np.ceil(lo[:, 0] - 0.5), 0, width).astype(np.int64)
    c1 = np.clip(np.floor(hi[:, 0] - 0.5), -1, width - 1).astype(np.int64)
    r0 = np.clip(np.ceil(lo[:, 1] - 0.5), 0, height).astype(np.int64)
    r1 = np.clip(np.floor(hi[:, 1] - 0.5), -1, height - 1).astype(np.int64)
    cols, rows = np.maximum(c1 - c0 + 1, 0), np.maximum(r1 - r0 + 1, 0)
    counts = cols * rows
    if counts.sum() == 0:
        return mask
    which = np.repeat(np.arange(len(tri)), counts)
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    px = c0[which] + k % cols[which]
    py = r0[which] + k // cols[which]
    x, y = px + 0.5, py + 0.5
    t = tri[which]
    sign = np.sign(area)[which]
    inside = np.ones(len(which), dtype=bool)
    for i in range(3):  # the centre is on the inner side of all three edges (either winding)
        p, q = t[:, i], t[:, (i + 1) % 3]
        edge = (q[:, 0] - p[:, 0]) * (y - p[:, 1]) - (q[:, 1] - p[:, 1]) * (x - p[:, 0])
        inside &= edge * sign >= 0
    mask[py[inside], px[inside]] = True
    return mask
