"""Rasterising projected triangles with numpy: the amodal silhouette of an object without a render.

A pixel is covered when its centre (col + 0.5, row + 0.5) lies inside a triangle (edges included),
which is the same single point sample the Object Index pass takes, so for an unoccluded object the
raster equals the rendered mask up to ties on edges. The work is vectorised over (triangle, row)
pairs: each gives a span of columns, and the spans are filled with a running sum per row, so the cost
grows with the triangles' heights, not their areas.
"""
from __future__ import annotations

import numpy as np


def rasterize(triangles: np.ndarray, width: int, height: int, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Coverage mask (height, width) of triangles given in pixel coordinates, shape (T, 3, 2).

    ``origin`` is the pixel coordinate of the canvas's top-left pixel (it may lie outside the image,
    e.g. to measure how much of an object is cut off by the image border). The mask is column-major
    (Fortran order), as COCO RLE encoding wants it."""
    mask = np.zeros((height, width), dtype=bool, order="F")
    window, top, left = rasterize_window(triangles, width, height, origin)
    mask[top:top + window.shape[0], left:left + window.shape[1]] = window
    return mask


def rasterize_window(triangles: np.ndarray, width: int, height: int,
                     origin: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, int, int]:
    """The part of :func:`rasterize`'s mask that can hold covered pixels: (window, top row, left column), the
    window a bool array no larger than the triangles' extent on the canvas (empty when nothing is covered)."""
    triangles = np.asarray(triangles, dtype=np.float64).reshape(-1, 3, 2)
    return rasterize_windows(triangles, np.zeros(len(triangles), dtype=np.int64), 1, width, height, origin)[0]


def rasterize_windows(triangles: np.ndarray, owners: np.ndarray, count: int, width: int, height: int,
                      origin: tuple[int, int] = (0, 0)) -> list[tuple[np.ndarray, int, int]]:
    """:func:`rasterize_window` of ``count`` sets of triangles in one pass (numpy's cost per call, not per set):
    ``owners`` gives each triangle's set, 0..count-1, in non-decreasing order."""
    windows = [(np.zeros((0, 0), dtype=bool), 0, 0)] * count
    tri = np.asarray(triangles, dtype=np.float64).reshape(-1, 3, 2) - np.asarray(origin, dtype=np.float64)
    if tri.size == 0:
        return windows
    (ax, ay), (bx, by), (cx, cy) = tri[:, 0].T, tri[:, 1].T, tri[:, 2].T
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    r0 = np.clip(np.ceil(tri[:, :, 1].min(axis=1) - 0.5), 0, height).astype(np.int64)
    r1 = np.clip(np.floor(tri[:, :, 1].max(axis=1) - 0.5), -1, height - 1).astype(np.int64)
    rows = np.where(np.abs(area) > 1e-12, np.maximum(r1 - r0 + 1, 0), 0)
    nz = np.flatnonzero(rows)
    if nz.size == 0:
        return windows
    which = np.repeat(nz, rows[nz])
    row = r0[which] + np.arange(which.size) - np.repeat(np.cumsum(rows[nz]) - rows[nz], rows[nz])
    y = row + 0.5
    lo, hi = np.full(which.size, -np.inf), np.full(which.size, np.inf)
    empty = np.zeros(which.size, dtype=bool)
    sign = np.sign(area)
    for (px, py), (qx, qy) in (((ax, ay), (bx, by)), ((bx, by), (cx, cy)), ((cx, cy), (ax, ay))):
        # inside this edge: A x + B y + C >= 0, i.e. A x >= -(B y + C)
        A, B = (-(qy - py) * sign)[which], ((qx - px) * sign)[which]
        C = (-(A * px[which] + B * py[which]))
        rhs = -(B * y + C)
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = rhs / A
        lo = np.where(A > 0, np.maximum(lo, bound), lo)
        hi = np.where(A < 0, np.minimum(hi, bound), hi)
        empty |= (A == 0) & (rhs > 0)
    c0 = np.clip(np.ceil(lo - 0.5), 0, width).astype(np.int64)
    c1 = np.clip(np.floor(hi - 0.5), -1, width - 1).astype(np.int64)
    ok = ~empty & (c1 >= c0)
    if not ok.any():
        return windows
    row, c0, c1, owner = row[ok], c0[ok], c1[ok], np.asarray(owners)[which][ok]  # grouped by owner
    present, first = np.unique(owner, return_index=True)
    top, left = np.minimum.reduceat(row, first), np.minimum.reduceat(c0, first)
    rows_of, cols_of = np.maximum.reduceat(row, first) - top + 1, np.maximum.reduceat(c1, first) - left + 2
    sizes = rows_of * cols_of
    offset = np.cumsum(sizes) - sizes
    k = np.repeat(np.arange(present.size), np.diff(np.r_[first, row.size]))
    # +1 where a span starts, -1 just after it ends, counted per cell of its owner's window, all windows in one
    # buffer (bincount: one pass, unlike np.add.at)
    base = offset[k] + (row - top[k]) * cols_of[k] - left[k]
    runs = np.bincount(base + c0, minlength=int(sizes.sum())) - np.bincount(base + c1 + 1, minlength=int(sizes.sum()))
    for j, index in enumerate(present.tolist()):
        block = runs[offset[j]:offset[j] + sizes[j]].reshape(rows_of[j], cols_of[j])
        windows[index] = (np.asfortranarray(np.cumsum(block, axis=1)[:, :-1] > 0), int(top[j]), int(left[j]))
    return windows
