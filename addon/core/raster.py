"""Rasterising projected triangles with numpy: the amodal silhouette of an object without a render.

A pixel is covered when its centre (col + 0.5, row + 0.5) lies inside a triangle (edges included),
which is the same single point sample the Object Index pass takes, so for an unoccluded object the
raster equals the rendered mask up to ties on edges. The work is vectorised over (triangle, row)
pairs: each gives a span of columns, and the spans are filled with a running sum per row, so the cost
grows with the triangles' heights, not their areas. The arrays of that work are kept from call to call (per
thread): made afresh each time, they were new pages every frame (~2,000 page faults a frame at 640x480 with 50
objects, a quarter of the labels' CPU time).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

KEPT_BYTES = 8 * 2**20  # the rasteriser's arrays are kept up to this size each (larger ones are made afresh)


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


class _Buffers(threading.local):
    """Arrays reused from one call to the next in a thread, grown as needed (arrays above KEPT_BYTES are not kept)."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self.counting = np.arange(0)

    def get(self, name: str, size: int, dtype=np.int64) -> np.ndarray:
        array = self.arrays.get(name)
        if array is None or array.size < size:
            itemsize = np.dtype(dtype).itemsize
            size_kept = max(size, 2 * (0 if array is None else array.size), 4096)
            if size_kept * itemsize > KEPT_BYTES:
                size_kept = size
            if size * itemsize > KEPT_BYTES:
                return np.empty(size, dtype)
            array = self.arrays[name] = np.empty(size_kept, dtype)
        return array[:size]

    def ranges(self, name: str, lengths: np.ndarray) -> np.ndarray:
        """np.repeat(np.arange(lengths.size), lengths) for positive lengths: which range each position is in."""
        out = self.get(name, int(lengths.sum()))
        out.fill(0)
        out[np.cumsum(lengths[:-1])] = 1
        return np.cumsum(out, out=out)

    def count(self, size: int) -> np.ndarray:
        """0, 1, ..., size - 1."""
        if self.counting.size < size:
            self.counting = np.arange(size if size * 8 > KEPT_BYTES else max(size, 2 * self.counting.size))
        return self.counting[:size]


_buffers = _Buffers()


def _edge_orders() -> tuple[np.ndarray, np.ndarray]:
    """For each pattern of the signs of a triangle's three edges' N (minus their A; pattern sum((sign + 1) * 3**edge):
    N < 0 a left edge, N > 0 a right one): its edges in the order (the first left one, the first right one, the
    third), as (3, 27) slot by slot, and whether it has both."""
    orders, both = np.zeros((3, 27), dtype=np.int64), np.zeros(27, dtype=bool)
    for pattern in range(27):
        signs = [pattern // 3**edge % 3 - 1 for edge in range(3)]
        left = [edge for edge in range(3) if signs[edge] < 0]
        right = [edge for edge in range(3) if signs[edge] > 0]
        if left and right and left[0] != right[0]:
            orders[:, pattern] = left[0], right[0], 3 - left[0] - right[0]
            both[pattern] = True
    return orders, both


EDGE_ORDERS_BY_SLOT, HAS_BOTH = _edge_orders()


def _left_right_third(N: np.ndarray) -> np.ndarray | None:
    """Each triangle's edges (N: minus their A, (3, T)) in the order (a left one, a right one, the third): a triangle
    of finite coordinates that crosses a row has both (its edges' heights add up to 0, and each has its sign exactly);
    None when one does not."""
    signs = np.sign(N)
    pattern = np.multiply(signs[2], 3.0)  # exact: small integers (NaN where an N is NaN); no BLAS product (threads)
    pattern += signs[1]
    pattern *= 3.0
    pattern += signs[0]
    pattern += 13.0
    if not np.isfinite(pattern).all():
        return None
    pattern = pattern.astype(np.intp)
    if not HAS_BOTH[pattern].all():
        return None
    return EDGE_ORDERS_BY_SLOT.take(pattern, axis=1)


def cover(triangles: np.ndarray, owners: np.ndarray, width: int, height: int,
          origin: tuple[int, int] = (0, 0)) -> Coverage:
    """The pixels of a (height, width) canvas with ``origin`` as its top-left pixel covered by triangles (T, 3, 2)
    in pixel coordinates, for sets of triangles in one pass (numpy's cost per call, not per set): ``owners``
    gives each triangle's set, in non-decreasing order."""
    tri = np.asarray(triangles, dtype=np.float64).reshape(-1, 6)
    if tuple(origin) != (0, 0):
        tri = tri - np.tile(np.asarray(origin, dtype=np.float64), 3)
    coords = _buffers.get("coords", tri.size, np.float64).reshape(6, -1)
    np.copyto(coords, tri.T)  # one copy: every coordinate in a row of its own
    return cover_rows(coords, owners, width, height)


def cover_rows(coords: np.ndarray, owners: np.ndarray, width: int, height: int) -> Coverage:
    """:func:`cover` of triangles given as six rows of coordinates (6, T): their first corners' x, y, the second's,
    the third's (a canvas with its top-left pixel at 0, 0)."""
    buffers = _buffers
    ax, ay, bx, by, cx, cy = coords
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    r0 = np.clip(np.ceil(np.minimum(np.minimum(ay, by), cy) - 0.5), 0, height).astype(np.int64)
    r1 = np.clip(np.floor(np.maximum(np.maximum(ay, by), cy) - 0.5), -1, height - 1).astype(np.int64)
    rows = np.where(np.abs(area) > 1e-12, np.maximum(r1 - r0 + 1, 0), 0)
    nz = np.flatnonzero(rows)  # the triangles that cross a pixel row's centre; a (triangle, row) pair each below
    rows, sign = rows[nz], np.sign(area[nz])
    which = buffers.ranges("which", rows)  # each pair's triangle (its place in nz)
    pairs = which.size
    row = np.take(r0[nz] - (np.cumsum(rows) - rows), which, out=buffers.get("row", pairs), mode="clip")
    row += buffers.count(pairs)
    y = np.add(row, 0.5, out=buffers.get("y", pairs, np.float64))
    # inside edge e: A x + B y + C >= 0, i.e. x >= -(B y + C) / A where A > 0 (a left edge: the span's start is the
    # largest of these bounds) and x <= ... where A < 0 (a right edge: its end is the smallest); per triangle, with
    # -A (N below): -(B y + C) / A is (B y + C) / -A to the bit
    # edge e goes from corner e to corner e + 1 (mod 3): all three edges at once, (3, T) each
    x, yy = coords[0::2].take(nz, axis=1), coords[1::2].take(nz, axis=1)
    A = np.roll(yy, -1, axis=0)  # each edge's end
    A -= yy
    A = np.negative(A, out=A)
    A *= sign
    B = np.roll(x, -1, axis=0)
    B -= x
    B *= sign
    C = A * x
    C += B * yy
    C = np.negative(C, out=C)
    N = np.negative(A, out=A)
    # edges put in the order (a left one, a right one, the third), the first two need no test per pair and give the
    # span's start and end; the third may be either or horizontal
    order = _left_right_third(N)
    known = order is not None
    if known:
        place = np.multiply(order, nz.size, out=order)
        place += buffers.count(nz.size)  # in (3, T) read flat
        N, B, C = (coefficient.ravel().take(place) for coefficient in (N, B, C))
    Np, Bp, Cp, lo, hi = (buffers.get(name, pairs, np.float64) for name in ("N", "B", "C", "lo", "hi"))
    is_left, is_right, flat, empty = (buffers.get(name, pairs, bool) for name in ("left", "right", "flat", "empty"))
    empty.fill(False)
    if not known:  # the same as np.maximum(-inf, bound) and np.minimum(inf, bound) of the first edge
        lo.fill(-np.inf)
        hi.fill(np.inf)
    for edge in range(3):
        for per_triangle, per_pair in ((N[edge], Np), (B[edge], Bp), (C[edge], Cp)):
            np.take(per_triangle, which, out=per_pair, mode="clip")  # mode="clip": out= unbuffered (indices valid)
        total = np.add(np.multiply(Bp, y, out=Bp), Cp, out=Cp)  # B y + C
        with np.errstate(divide="ignore", invalid="ignore"):
            if known and edge < 2:
                np.divide(total, Np, out=hi if edge else lo)
                continue
            bound = np.divide(total, Np, out=Bp)
        np.maximum(lo, bound, out=lo, where=np.less(Np, 0, out=is_left))
        np.minimum(hi, bound, out=hi, where=np.greater(Np, 0, out=is_right))
        if (N[edge] == 0).any():  # a horizontal edge: the pairs of its row that lie outside it cover nothing
            np.logical_and(np.equal(Np, 0, out=flat), np.less(total, 0, out=is_left), out=flat)
            empty |= flat
    c0, c1 = buffers.get("c0", pairs), buffers.get("c1", pairs)
    np.copyto(c0, np.clip(np.ceil(np.subtract(lo, 0.5, out=lo), out=lo), 0, width, out=lo), casting="unsafe")
    np.copyto(c1, np.clip(np.floor(np.subtract(hi, 0.5, out=hi), out=hi), -1, width - 1, out=hi), casting="unsafe")
    ok = np.flatnonzero(np.greater_equal(c1, c0, out=is_left) & np.logical_not(empty, out=empty))
    spans = ok.size
    row, c0, c1 = (np.take(a, ok, out=buffers.get(name, spans), mode="clip")
                   for a, name in ((row, "span row"), (c0, "span c0"), (c1, "span c1")))
    owner = np.take(np.asarray(owners, dtype=np.int64)[nz], np.take(which, ok, out=buffers.get("span", spans),
                                                                    mode="clip"), mode="clip")  # non-decreasing
    if not spans:
        nothing = np.zeros(0, dtype=np.int64)
        return Coverage(nothing, nothing, nothing, nothing, nothing, nothing, np.zeros(0, dtype=bool))
    first = np.r_[0, np.flatnonzero(owner[1:] != owner[:-1]) + 1]  # np.unique(owner, return_index=True)'s
    sets = owner[first]
    top, left = np.minimum.reduceat(row, first), np.minimum.reduceat(c0, first)
    rows_of, cols_of = np.maximum.reduceat(row, first) - top + 1, np.maximum.reduceat(c1, first) - left + 1
    sizes = (rows_of + 1) * (cols_of + 1)
    offset = np.cumsum(sizes) - sizes
    # each window's top row, row length and start (less its left column) looked up by owner: a table per set id
    table = np.zeros((3, int(sets[-1]) + 1), dtype=np.int64)
    table[:, sets] = top, cols_of + 1, offset - left
    # +1 where a span starts, -1 just after it ends, counted per cell of its owner's window, all windows in one
    # buffer; a running sum over the whole buffer then counts the spans over each cell (each row's +1 and -1
    # cancel within the row)
    base, part = buffers.get("base", spans), buffers.get("part", spans)
    np.subtract(row, np.take(table[0], owner, out=part, mode="clip"), out=base)
    base *= np.take(table[1], owner, out=part, mode="clip")
    base += np.take(table[2], owner, out=part, mode="clip")
    counts = buffers.get("counts", int(sizes.sum()))
    counts.fill(0)
    np.add.at(counts, np.add(base, c0, out=part), 1)
    np.add.at(counts, np.add(np.add(base, c1, out=part), 1, out=part), -1)
    return Coverage(sets, top, left, rows_of, cols_of, offset, np.cumsum(counts, out=counts) > 0)
