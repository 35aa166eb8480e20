"""Labels from pixels and cameras (numpy only): instance statistics, boxes, RLE masks, camera frames.

Pixel convention: a pixel at column c, row r covers [c, c+1) x [r, r+1); a box is COCO [x, y, w, h],
so one pixel at (c, r) has the box [c, r, 1, 1]. Camera convention: OpenCV (x right, y down, z forward).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import numpy as np
from pycocotools import mask as coco_mask

from .raster import rasterize, rasterize_window, rasterize_windows

if TYPE_CHECKING:
    from .lens import Lens, View

# Blender cameras look down their local -Z with +Y up; OpenCV cameras look down +Z with +Y down.
BLENDER_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass
class InstanceLabel:
    instance_id: int
    pixels: int  # visible pixel count
    bbox: list[int]  # visible box [x, y, w, h]
    rle: dict  # COCO compressed RLE {"size": [h, w], "counts": str}


def rle_encode(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a boolean (H, W) mask, JSON-ready."""
    if mask.dtype == bool and mask.flags.f_contiguous:
        encoded = coco_mask.encode(mask.view(np.uint8))  # no copy
    else:
        encoded = coco_mask.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(s) for s in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def rle_decode(rle: dict) -> np.ndarray:
    counts = rle["counts"]
    raw = {"size": rle["size"], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return coco_mask.decode(raw).astype(bool)


def bbox_of_mask(mask: np.ndarray) -> list[int] | None:
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    if not rows.any():
        return None
    r0, r1 = np.flatnonzero(rows)[[0, -1]]
    c0, c1 = np.flatnonzero(cols)[[0, -1]]
    return [int(c0), int(r0), int(c1 - c0 + 1), int(r1 - r0 + 1)]


def instances_from_mask(index: np.ndarray, ids: Iterable[int]) -> dict[int, InstanceLabel]:
    """Visible pixels, box and RLE of every requested id present in the instance image.

    One pass over the image for all ids: the image is cut into runs of equal ids in column-major order (COCO
    RLE's order); each id's runs give its pixel count, its box (a run that crosses into the next column covers
    the last and the first row) and its RLE counts, which pycocotools compresses (the same string as encoding
    the id's mask)."""
    index = np.asarray(index)
    if index.ndim != 2 or not np.issubdtype(index.dtype, np.integer):
        raise TypeError(f"an instance-id image must be a 2D integer array, got {index.dtype} {index.shape}")
    wanted = np.asarray(sorted(set(int(i) for i in ids)), dtype=np.int64)
    wanted = wanted[wanted > 0]  # 0 is background
    if wanted.size == 0 or index.size == 0:
        return {}
    height, width = index.shape
    flat = index.ravel(order="F")
    starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
    ends = np.r_[starts[1:], flat.size]  # runs are [start, end)
    values = flat[starts]
    keep = np.isin(values, wanted)
    order = np.argsort(values[keep], kind="stable")  # grouped by id, in image order within an id
    starts, ends, values = starts[keep][order], ends[keep][order], values[keep][order]
    if not values.size:
        return {}
    present, first = np.unique(values, return_index=True)
    c0, c1 = starts // height, (ends - 1) // height
    one_column = c0 == c1
    r0 = np.where(one_column, starts % height, 0)
    r1 = np.where(one_column, (ends - 1) % height, height - 1)
    x0, x1 = np.minimum.reduceat(c0, first), np.maximum.reduceat(c1, first)
    y0, y1 = np.minimum.reduceat(r0, first), np.maximum.reduceat(r1, first)
    pixels = np.add.reduceat(ends - starts, first)
    rles = _rle_from_runs(starts, ends, first, height, width)
    return {int(iid): InstanceLabel(int(iid), int(n), [int(a), int(b), int(c - a + 1), int(d - b + 1)], rle)
            for iid, n, a, b, c, d, rle in zip(present, pixels, x0, y0, x1, y1, rles)}


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


def blender_to_opencv_camera(matrix_world) -> tuple[np.ndarray, np.ndarray]:
    """(camera-to-world, world-to-camera) 4x4 in the OpenCV convention from a Blender camera's matrix_world.
    Scale on the camera object is ignored (as Blender's renderer does): the axes are normalised."""
    cam_to_world = np.asarray(matrix_world, dtype=float) @ BLENDER_TO_OPENCV
    cam_to_world[:3, :3] /= np.linalg.norm(cam_to_world[:3, :3], axis=0)
    rotation, translation = cam_to_world[:3, :3], cam_to_world[:3, 3]
    world_to_cam = np.eye(4)
    world_to_cam[:3, :3] = rotation.T
    world_to_cam[:3, 3] = -rotation.T @ translation
    return cam_to_world, world_to_cam


def project(K: np.ndarray, world_to_cam: np.ndarray, points: np.ndarray) -> np.ndarray:
    """World points (N, 3) -> pixel coordinates (N, 2) in the convention above."""
    pts = np.c_[np.asarray(points, float), np.ones(len(points))] @ np.asarray(world_to_cam).T
    uvw = pts[:, :3] @ np.asarray(K).T
    return uvw[:, :2] / uvw[:, 2:3]


# -- labels from geometry (amodal box and area, truncation, pose, 3D box) -------------------------------
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


def geometry_labels(K, world_to_cam, resolution: tuple[int, int], triangles: np.ndarray, matrix_world,
                    local_lo, local_hi, near: float = 1e-4, view: "View | None" = None) -> dict:
    """Labels of one object computed from its evaluated triangles (world space, (T, 3, 3)) and transform.

    Triangles with a corner behind the camera's near plane are left out of the amodal area (an object
    that reaches behind the camera is rare in datasets; its amodal area is then underestimated).
    With a distorting ``view`` (see :mod:`.lens`), points go through its lens and the amodal mask is
    rasterised in its pinhole render and remapped like the rendered ids."""
    return geometry_labels_many(K, world_to_cam, resolution, [(triangles, matrix_world, local_lo, local_hi)], near,
                                view)[0]


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


def visibility(visible_pixels: int, amodal_pixels: int) -> float:
    """Visible fraction of the object's silhouette inside the image (0 when it has none)."""
    if amodal_pixels <= 0:
        return 0.0
    return float(min(1.0, visible_pixels / amodal_pixels))


def keypoint_labels(K, world_to_cam, points: dict[str, list[float]], index: np.ndarray, depth: np.ndarray,
                    instance_id: int, lens: "Lens | None" = None) -> list[dict]:
    """COCO-style keypoints: v = 2 visible, 1 in the image but hidden (by another object or the object's
    own surface), 0 outside the image or behind the camera (then x = y = 0)."""
    K, world_to_cam = np.asarray(K, float), np.asarray(world_to_cam, float)
    height, width = index.shape
    out = []
    for name, point in sorted(points.items()):
        cam = _to_camera(world_to_cam, np.asarray(point, float)[None])[0]
        if cam[2] <= 0:
            out.append({"name": name, "x": 0.0, "y": 0.0, "v": 0})
            continue
        if lens is not None and lens.distorted:
            (x, y), ok = (a[0] for a in lens.project(cam[None]))
            if not ok:
                out.append({"name": name, "x": 0.0, "y": 0.0, "v": 0})
                continue
        else:
            x, y = _to_pixels(K, cam[None])[0]
        col, row = int(np.floor(x)), int(np.floor(y))
        if not (0 <= col < width and 0 <= row < height):
            out.append({"name": name, "x": 0.0, "y": 0.0, "v": 0})
            continue
        surface = depth[row, col]
        on_top = index[row, col] == instance_id and cam[2] <= surface + max(0.01, 0.01 * surface)
        out.append({"name": name, "x": float(x), "y": float(y), "v": 2 if on_top else 1})
    return out
