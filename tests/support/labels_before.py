"""The geometry labels as main computed them before issue 13's batching (commit 7193b7e), kept verbatim as the
oracle of tests/unit/test_labels_unchanged.py: the labels of a frame must stay bit-identical (the same seed gives
the same dataset). Change it only together with a deliberate change of the labels, and say so in the commit."""
from __future__ import annotations

import numpy as np
from pycocotools import mask as coco_mask


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


def rle_encode(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a boolean (H, W) mask, JSON-ready."""
    if mask.dtype == bool and mask.flags.f_contiguous:
        encoded = coco_mask.encode(mask.view(np.uint8))  # no copy
    else:
        encoded = coco_mask.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(s) for s in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def bbox_of_mask(mask: np.ndarray) -> list[int] | None:
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    if not rows.any():
        return None
    r0, r1 = np.flatnonzero(rows)[[0, -1]]
    c0, c1 = np.flatnonzero(cols)[[0, -1]]
    return [int(c0), int(r0), int(c1 - c0 + 1), int(r1 - r0 + 1)]


def _rle_from_runs(starts: np.ndarray, ends: np.ndarray, first: np.ndarray, height: int, width: int) -> list[dict]:
    """COCO compressed RLEs of (height, width) masks given by their runs of ones in column-major order: [start,
    end) sorted, disjoint and not touching within a mask; ``first``: where each mask's runs begin."""
    previous_end = np.r_[0, ends[:-1]]
    previous_end[first] = 0  # a mask's first run follows the image's start
    counts = np.empty(2 * starts.size, dtype=np.int64)  # zeros before each run, then the run
    counts[0::2], counts[1::2] = starts - previous_end, ends - starts
    size = height * width
    last = np.r_[first[1:], starts.size] - 1
    uncompressed = [{"size": [height, width],
                     "counts": [*counts[2 * a:2 * b + 2].tolist(), *([size - int(ends[b])] if ends[b] < size else [])]}
                    for a, b in zip(first.tolist(), last.tolist())]
    return [{"size": [height, width], "counts": rle["counts"].decode("ascii")}
            for rle in coco_mask.frPyObjects(uncompressed, height, width)]


def rle_encode_window(window: np.ndarray, top: int, left: int, height: int, width: int) -> dict:
    """:func:`rle_encode` of the (height, width) mask that holds ``window`` at (top, left) and nothing else, without
    making that mask."""
    h = window.shape[0]
    padded = np.zeros((h + 2, window.shape[1]), dtype=bool, order="F")  # a False row above and below each column
    padded[1:-1] = window
    flat = padded.ravel(order="F")
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # each column's runs of ones start and end inside it
    if not edges.size:
        return rle_encode(np.zeros((height, width), dtype=bool, order="F"))
    start, end = edges[0::2], edges[1::2]
    starts = (left + start // (h + 2)) * height + top + start % (h + 2) - 1
    ends = starts + (end - start)
    joined = np.r_[False, starts[1:] == ends[:-1]]  # a window as tall as the image: runs go on in the next column
    starts, ends = starts[~joined], ends[np.r_[~joined[1:], True]]
    return _rle_from_runs(starts, ends, np.zeros(1, dtype=np.int64), height, width)[0]


def box_corners(lo, hi) -> np.ndarray:
    """The 8 corners of an axis-aligned box, in Blender's bound_box order."""
    (x0, y0, z0), (x1, y1, z1) = lo, hi
    return np.array([[x0, y0, z0], [x0, y0, z1], [x0, y1, z1], [x0, y1, z0],
                     [x1, y0, z0], [x1, y0, z1], [x1, y1, z1], [x1, y1, z0]], dtype=float)


def _to_camera(world_to_cam: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]


def _to_pixels(K: np.ndarray, cam_points: np.ndarray) -> np.ndarray:
    uvw = cam_points @ K.T
    return uvw[..., :2] / uvw[..., 2:3]


def geometry_labels_many(K, world_to_cam, resolution: tuple[int, int], objects: list, near: float = 1e-4,
                         view: "View | None" = None) -> list[dict]:
    """:func:`geometry_labels` of every object of a frame, ``objects`` a list of (triangles, matrix_world, local_lo,
    local_hi); the amodal masks of a pinhole view are rasterised in one pass."""
    K, world_to_cam = np.asarray(K, dtype=float), np.asarray(world_to_cam, dtype=float)
    width, height = resolution
    fronts = []
    for triangles, *_ in objects:
        cam_tris = _to_camera(world_to_cam, np.asarray(triangles, dtype=float).reshape(-1, 3)).reshape(-1, 3, 3)
        fronts.append(cam_tris[(cam_tris[..., 2] > near).all(axis=1)])
    if view is not None and not view.identity:
        amodal = [_distorted_amodal(view, front) for front in fronts]
    else:
        amodal = _amodal_many(K, fronts, width, height)
    return [{**labels, **_pose_labels(K, world_to_cam, np.asarray(matrix, dtype=float), lo, hi, near, view)}
            for labels, (_, matrix, lo, hi) in zip(amodal, objects)]


def _amodal_many(K, fronts: list[np.ndarray], width: int, height: int) -> list[dict]:
    px = [_to_pixels(K, front) for front in fronts]  # one call per object: the same arithmetic as one object alone
    owners = np.repeat(np.arange(len(px)), [len(p) for p in px])
    windows = rasterize_windows(np.concatenate(px), owners, len(px), width, height)
    points = np.concatenate(px).reshape(-1, 2)  # every object's extent in two reductions, not four per object
    sizes = np.array([3 * len(p) for p in px])
    starts = (np.cumsum(sizes) - sizes)[sizes > 0]
    lows = iter(np.minimum.reduceat(points, starts, axis=0).tolist() if starts.size else [])
    highs = iter(np.maximum.reduceat(points, starts, axis=0).tolist() if starts.size else [])
    return [_amodal(px_tris, window, width, height, *((next(lows), next(highs)) if len(px_tris) else (None, None)))
            for px_tris, window in zip(px, windows)]


def _amodal(px_tris, window: tuple[np.ndarray, int, int], width, height, low, high) -> dict:
    """Amodal labels of one object's triangles in pixels, its silhouette rasterised in ``window``, its points'
    extent from ``low`` to ``high`` ((x, y) each)."""
    labels: dict = {"amodal_pixels": 0, "amodal_bbox": None, "amodal_bbox_unclipped": None,
                    "amodal_segmentation": None, "truncation": 1.0, "amodal_pixels_all": 0, "amodal_bbox_all": None}
    if len(px_tris):
        (x0, y0), (x1, y1) = low, high
        labels["amodal_bbox_unclipped"], labels["amodal_bbox"] = _boxes_of(x0, y0, x1, y1, width, height)
        inside, top, left = window
        labels["amodal_pixels"] = int(inside.sum())
        if labels["amodal_pixels"]:
            labels["amodal_segmentation"] = rle_encode_window(inside, top, left, height, width)
            labels.update(_whole_silhouette(px_tris, (inside, top, left), (x0, y0, x1, y1), width, height))
    return labels


def _boxes(points: np.ndarray, width: int, height: int) -> tuple[list | None, list | None]:
    """(unclipped, clipped) [x, y, w, h] boxes of pixel points."""
    if not len(points):
        return None, None
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    return _boxes_of(x0, y0, x1, y1, width, height)


def _boxes_of(x0, y0, x1, y1, width: int, height: int) -> tuple[list, list | None]:
    """(unclipped, clipped) [x, y, w, h] boxes of the extent (x0, y0)-(x1, y1)."""
    cx0, cy0, cx1, cy1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height))
    clipped = [float(cx0), float(cy0), float(cx1 - cx0), float(cy1 - cy0)] if cx1 > cx0 and cy1 > cy0 else None
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], clipped


def _distorted_amodal(view, front_tris) -> dict:
    """Amodal labels through a distorting lens: the box from the vertices through the lens, the mask
    rasterised in the pinhole render and remapped (nearest) like the ids, truncation measured in the render
    against the image's footprint there."""
    width, height = view.lens.size
    points, valid = view.lens.project(front_tris.reshape(-1, 3))
    unclipped, clipped = _boxes(points[valid], width, height)
    labels: dict = {"amodal_pixels": 0, "amodal_bbox": clipped, "amodal_bbox_unclipped": unclipped,
                    "amodal_segmentation": None, "truncation": 1.0}
    if not len(front_tris):
        return labels
    Wr, Hr = view.source.size
    render_tris = _to_pixels(view.source.K, front_tris)
    inside = np.asfortranarray(view.nearest(rasterize(render_tris, Wr, Hr)))
    labels["amodal_pixels"] = int(inside.sum())
    if labels["amodal_pixels"]:
        labels["amodal_segmentation"] = rle_encode(inside)
        pts = render_tris.reshape(-1, 2)
        ox, oy = (int(np.floor(max(v, -2 * s))) for v, s in zip(pts.min(axis=0), (Wr, Hr)))
        ex, ey = (int(np.ceil(min(v, 3 * s))) for v, s in zip(pts.max(axis=0), (Wr, Hr)))
        ox, oy, ex, ey = min(ox, 0), min(oy, 0), max(ex, Wr), max(ey, Hr)
        whole = rasterize(render_tris, ex - ox, ey - oy, origin=(ox, oy))
        seen = whole[-oy:-oy + Hr, -ox:-ox + Wr] & view.covered()
        labels["truncation"] = float(1.0 - seen.sum() / max(int(whole.sum()), 1))
    return labels


def _pose_labels(K, world_to_cam, matrix_world, local_lo, local_hi, near, view) -> dict:
    """Pose (object-to-camera R, t), size, distance and the 3D box in object, camera and image space."""
    labels: dict = {}
    # pose: object-to-camera rotation (scale removed) and translation, OpenCV camera
    linear = matrix_world[:3, :3]
    scale = np.linalg.norm(linear, axis=0)
    rotation_world = linear / np.where(scale > 0, scale, 1.0)
    R = world_to_cam[:3, :3] @ rotation_world
    t = _to_camera(world_to_cam, matrix_world[:3, 3][None])[0]
    corners_obj = box_corners(local_lo, local_hi) * scale  # metric, in the object's (unscaled) frame
    corners_cam = corners_obj @ R.T + t
    centre_cam = corners_cam.mean(axis=0)
    labels.update({
        "pose": {"R": R.tolist(), "t": t.tolist()},
        "size": ((np.asarray(local_hi, float) - np.asarray(local_lo, float)) * scale).tolist(),
        "distance": float(np.linalg.norm(centre_cam)),
        "box3d": {"object": corners_obj.tolist(), "camera": corners_cam.tolist(),
                  "image": _image_points(K, view, corners_cam, near)},
    })
    return labels


def _image_points(K, view, cam_points: np.ndarray, near: float) -> list | None:
    """Pixels of camera points through the view's lens, or None unless every point projects."""
    if not (cam_points[:, 2] > near).all():
        return None
    if view is None or view.identity:
        return _to_pixels(K, cam_points).tolist()
    pixels, valid = view.lens.project(cam_points)
    return pixels.tolist() if valid.all() else None


def _whole_silhouette(px_tris: np.ndarray, window, extent, width: int, height: int) -> dict:
    """Pixel count and box of the whole silhouette, also where the image border cuts it, on the canvas
    BOP's definitions use (one image beyond each border), and the truncation that follows. ``window``: the
    in-image coverage as rasterize_window gives it (window, top row, left column)."""
    inside, top, left = window
    x0, y0, x1, y1 = extent
    ox, oy = int(np.floor(max(x0, -width))), int(np.floor(max(y0, -height)))
    ex, ey = int(np.ceil(min(x1, 2 * width))), int(np.ceil(min(y1, 2 * height)))
    whole, origin = inside, (left, top)
    if ox < 0 or oy < 0 or ex > width or ey > height:
        whole, wtop, wleft = rasterize_window(px_tris, ex - ox, ey - oy, origin=(ox, oy))
        origin = (ox + wleft, oy + wtop)
    visible = int(inside.sum())
    total = max(int(whole.sum()), visible)
    box = bbox_of_mask(whole)
    return {"truncation": float(1.0 - visible / total), "amodal_pixels_all": total,
            "amodal_bbox_all": [box[0] + origin[0], box[1] + origin[1], box[2], box[3]] if box else None}
