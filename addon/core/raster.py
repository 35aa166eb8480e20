"""Rasterising projected triangles with numpy: the amodal silhouette of an object without a render.

A pixel is covered when its centre (col + 0.5, row + 0.5) lies inside a triangle (edges included),
which is the same single point sample the Object Index pass takes, so for an unoccluded object the
raster equals the rendered mask up to ties on edges. The work is vectorised over (triangle, row)
pairs: each gives a span of columns, and the spans are filled with a running sum per row, so the cost
grows with the triangles' heights, not their areas.
"""
from __future__ import annotations

from dataclasses import dataclass

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
    """The part of :func:`rasterize`'s mask that holds its covered pixels: (window, top row, left column), the
    window a bool array as large as their bounding box (empty when nothing is covered)."""
    triangles = np.asarray(triangles, dtype=np.float64).reshape(-1, 3, 2)
    coverage = cover(triangles, np.zeros(len(triangles), dtype=np.int64), width, height, origin)
    return coverage.window(0) if coverage.sets.size else (np.zeros((0, 0), dtype=bool), 0, 0)


@dataclass(frozen=True)
class Coverage:
    """The pixels covered by sets of triangles, all sets in one buffer. Set ``sets[j]`` (only sets that cover a
    pixel are listed, in increasing order) covers pixels within the window of ``rows[j]`` rows and ``cols[j]``
    columns at (``top[j]``, ``left[j]``) on the canvas, the bounding box of its covered pixels; the window is
    ``covered[offset[j]:]``, row-major, with one more row and one more column that are never covered."""

    sets: np.ndarray
    top: np.ndarray
    left: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    offset: np.ndarray
    covered: np.ndarray

    def block(self, j: int) -> np.ndarray:
        """Set ``sets[j]``'s window with its extra row and column."""
        rows, cols, offset = int(self.rows[j]) + 1, int(self.cols[j]) + 1, int(self.offset[j])
        return self.covered[offset:offset + rows * cols].reshape(rows, cols)

    def window(self, j: int) -> tuple[np.ndarray, int, int]:
        """Set ``sets[j]``'s window as :func:`rasterize_window` gives it."""
        return np.asfortranarray(self.block(j)[:-1, :-1]), int(self.top[j]), int(self.left[j])

    def column_runs(self, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every set's covered pixels as runs of consecutive positions of a canvas ``height`` rows tall read
        column by column (COCO RLE's order): (set, start, end) of each run, [start, end), in increasing order
        within a set (a run goes on into the next column where a window is as tall as the canvas)."""
        if not self.sets.size:
            return self.sets, self.sets, self.sets
        # every window column by column, each column followed by the extra row's cell: runs end within a column
        flat = np.concatenate([np.zeros(1, dtype=bool), *(self.block(j).T.ravel() for j in range(self.sets.size))])
        change = np.flatnonzero(flat[1:] != flat[:-1])  # starts and ends of runs alternate
        begin, end = change[0::2], change[1::2]
        j = np.searchsorted(self.offset, begin, side="right") - 1
        tall = self.rows[j] + 1
        column, row = np.divmod(begin - self.offset[j], tall)
        start = (self.left[j] + column) * height + self.top[j] + row
        stop = start + (end - begin)
        joined = np.flatnonzero((start[1:] == stop[:-1]) & (j[1:] == j[:-1]))  # a run going on in the next column
        if joined.size:
            keep = np.ones(start.size, dtype=bool)
            keep[joined + 1] = False
            last = np.r_[np.flatnonzero(keep)[1:] - 1, start.size - 1]
            j, start, stop = j[keep], start[keep], stop[last]
        return self.sets[j], start, stop

    def pixel_counts(self, count: int) -> np.ndarray:
        """Covered pixels of each of the sets 0..count-1."""
        counts = np.zeros(count, dtype=np.int64)
        if self.sets.size:
            counts[self.sets] = np.add.reduceat(self.covered, self.offset, dtype=np.int64)
        return counts


def cover(triangles: np.ndarray, owners: np.ndarray, width: int, height: int,
          origin: tuple[int, int] = (0, 0)) -> Coverage:
    """The pixels of a (height, width) canvas with ``origin`` as its top-left pixel covered by triangles (T, 3, 2)
    in pixel coordinates, for sets of triangles in one pass (numpy's cost per call, not per set): ``owners``
    gives each triangle's set, in non-decreasing order."""
    tri = np.asarray(triangles, dtype=np.float64).reshape(-1, 6)
    if tuple(origin) != (0, 0):
        tri = tri - np.tile(np.asarray(origin, dtype=np.float64), 3)
    ax, ay, bx, by, cx, cy = np.ascontiguousarray(tri.T)  # one copy: every coordinate in a row of its own
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    r0 = np.clip(np.ceil(np.minimum(np.minimum(ay, by), cy) - 0.5), 0, height).astype(np.int64)
    r1 = np.clip(np.floor(np.maximum(np.maximum(ay, by), cy) - 0.5), -1, height - 1).astype(np.int64)
    rows = np.where(np.abs(area) > 1e-12, np.maximum(r1 - r0 + 1, 0), 0)
    nz = np.flatnonzero(rows)  # the triangles that cross a pixel row's centre; a (triangle, row) pair each below
    rows, sign = rows[nz], np.sign(area[nz])
    which = np.repeat(np.arange(nz.size), rows)
    row = np.arange(which.size) + np.repeat(r0[nz] - (np.cumsum(rows) - rows), rows)
    y = row + 0.5
    lo = hi = empty = None
    for (px, py), (qx, qy) in (((ax, ay), (bx, by)), ((bx, by), (cx, cy)), ((cx, cy), (ax, ay))):
        # inside this edge: A x + B y + C >= 0, i.e. A x >= -(B y + C); per triangle, then per pair
        px, py, qx, qy = px[nz], py[nz], qx[nz], qy[nz]
        A, B = -(qy - py) * sign, (qx - px) * sign
        C = -(A * px + B * py)
        A, B, C = A[which], B[which], C[which]
        rhs = -(B * y + C)
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = rhs / A
        if lo is None:  # the same as np.maximum(-inf, bound) and np.minimum(inf, bound)
            lo, hi, empty = np.where(A > 0, bound, -np.inf), np.where(A < 0, bound, np.inf), (A == 0) & (rhs > 0)
            continue
        np.maximum(lo, bound, out=lo, where=A > 0)
        np.minimum(hi, bound, out=hi, where=A < 0)
        empty |= (A == 0) & (rhs > 0)
    c0 = np.clip(np.ceil(lo - 0.5), 0, width).astype(np.int64)
    c1 = np.clip(np.floor(hi - 0.5), -1, width - 1).astype(np.int64)
    ok = np.flatnonzero(~empty & (c1 >= c0))
    row, c0, c1 = row.take(ok), c0.take(ok), c1.take(ok)
    owner = np.asarray(owners, dtype=np.int64).take(nz.take(which.take(ok)))  # grouped by owner
    sets, first = np.unique(owner, return_index=True)
    if not sets.size:
        nothing = np.zeros(0, dtype=np.int64)
        return Coverage(nothing, nothing, nothing, nothing, nothing, nothing, np.zeros(0, dtype=bool))
    top, left = np.minimum.reduceat(row, first), np.minimum.reduceat(c0, first)
    rows_of, cols_of = np.maximum.reduceat(row, first) - top + 1, np.maximum.reduceat(c1, first) - left + 1
    sizes = (rows_of + 1) * (cols_of + 1)
    offset = np.cumsum(sizes) - sizes
    k = np.repeat(np.arange(sets.size), np.diff(np.r_[first, row.size]))
    # +1 where a span starts, -1 just after it ends, counted per cell of its owner's window, all windows in one
    # buffer (bincount: one pass, unlike np.add.at); a running sum over the whole buffer then counts the spans
    # over each cell (each row's +1 and -1 cancel within the row)
    base = offset[k] + (row - top[k]) * (cols_of[k] + 1) - left[k]
    total = int(sizes.sum())
    runs = np.bincount(base + c0, minlength=total) - np.bincount(base + c1 + 1, minlength=total)
    return Coverage(sets, top, left, rows_of, cols_of, offset, np.cumsum(runs) > 0)
