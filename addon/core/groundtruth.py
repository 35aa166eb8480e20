"""Labels from pixels and cameras (numpy only): instance statistics, boxes, RLE masks, camera frames.

Pixel convention: a pixel at column c, row r covers [c, c+1) x [r, r+1); a box is COCO [x, y, w, h],
so one pixel at (c, r) has the box [c, r, 1, 1]. Camera convention: OpenCV (x right, y down, z forward).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Iterable

import numpy as np
from pycocotools import mask as coco_mask

from .raster import cover_rows, rasterize, rasterize_window

if TYPE_CHECKING:
    from .lens import Lens, View

# rows of points per matrix product: OpenBLAS computes one product on one thread up to 262144 multiply-adds (on a
# busy machine a second thread is mostly waited for)
BLAS_ROWS = 16384
# objects are labelled in groups of about this many triangles (a toybox frame of 50 objects, 20-25k triangles, in one):
# the fewer groups, the fewer numpy calls (the rasteriser keeps its arrays, so larger groups are no new memory each
# frame); groups of 4096 took 1.3x the time of one group on real frames
GROUP_TRIANGLES = 32768
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
    # where a run starts in column-major order: below a change within a column, at the top of a column that does not
    # go on with the last one's value; found in the image's own layout (a column-major copy costs more than all else)
    below = np.flatnonzero(index[1:] != index[:-1])  # (row - 1) * width + column of each start inside a column
    tops = np.flatnonzero(index[0, 1:] != index[-1, :-1]) + 1
    starts = np.sort(np.concatenate([np.zeros(1, dtype=np.intp), (below % width) * height + below // width + 1,
                                     tops * height]))
    ends = np.r_[starts[1:], index.size]  # runs are [start, end)
    values = index[starts % height, starts // height]
    if wanted[-1] - wanted[0] == wanted.size - 1:  # ids 1..N (frame_labels'): a range, two comparisons
        keep = np.flatnonzero((values >= wanted[0]) & (values <= wanted[-1]))
    else:
        keep = np.flatnonzero(np.isin(values, wanted))
    keep = keep[np.argsort(values[keep], kind="stable")]  # grouped by id, in image order within an id
    starts, ends, values = starts[keep], ends[keep], values[keep]
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
# the 8 corners of an axis-aligned box in Blender's bound_box order: which bound (0 low, 1 high) each coordinate takes
CORNER_BOUNDS = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 1], [0, 1, 0], [1, 0, 0], [1, 0, 1], [1, 1, 1], [1, 1, 0]])


def box_corners(lo, hi) -> np.ndarray:
    """The 8 corners of an axis-aligned box, in Blender's bound_box order."""
    return np.stack([np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)])[CORNER_BOUNDS, np.arange(3)]


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


@dataclass(frozen=True)
class Mesh:
    """Triangles as points (V, 3) and the point of each triangle's corners (T, 3): a mesh has about six corners per
    vertex, so points are moved and projected once per vertex, then gathered per corner (the same numbers)."""

    vertices: np.ndarray
    corners: np.ndarray

    @classmethod
    def of_triangles(cls, triangles) -> "Mesh":
        triangles = np.asarray(triangles, dtype=float).reshape(-1, 3, 3)
        return cls(triangles.reshape(-1, 3), np.arange(3 * len(triangles)).reshape(-1, 3))

    @cached_property
    def triangles(self) -> np.ndarray:
        """(T, 3, 3)."""
        return self.vertices[self.corners]


def geometry_labels_many(K, world_to_cam, resolution: tuple[int, int], objects: list, near: float = 1e-4,
                         view: "View | None" = None) -> list[dict]:
    """:func:`geometry_labels` of every object of a frame, ``objects`` a list of (triangles, matrix_world, local_lo,
    local_hi), computed for many objects at once (in groups of about GROUP_TRIANGLES triangles). The triangles are
    world triangles (T, 3, 3) or a :class:`Mesh` in the object's own frame (its vertices placed in the world as
    ``vertices @ matrix_world[:3, :3].T + matrix_world[:3, 3]``, what frame_labels did to every corner).

    The labels are those of each object alone to the last bit: elementwise arithmetic and min/max do not depend
    on what else is in the array, sums are written out in the order numpy takes for one object, and each small
    matrix product is the BLAS call one object makes (a stack of them: numpy's matmul calls BLAS per matrix of the
    stack). The exception: a group's points go to pixels in one product (a few for many points), which relies on
    BLAS computing each row of a product alike however many rows there are (OpenBLAS does: the same fused
    multiply-adds in the same order per element); tests/unit/test_labels_unchanged.py compares with the
    per-object code. The same holds for the products that move points to the camera's frame and to pixels (many
    objects' points in one product) and for a mesh's vertices (each corner is moved as its vertex: the same row of
    the same product)."""
    K, world_to_cam = np.asarray(K, dtype=float), np.asarray(world_to_cam, dtype=float)
    meshes = _in_world(objects)
    if view is not None and not view.identity:
        amodal = []
        for mesh in meshes:
            cam, corners, _ = _in_front(world_to_cam, [mesh], near)
            amodal.append(_distorted_amodal(view, cam[corners]))
    else:
        amodal = []
        for first, last in _groups([len(mesh.corners) for mesh in meshes], GROUP_TRIANGLES):
            amodal += _amodal_group(K, *_in_front(world_to_cam, meshes[first:last], near), last - first, *resolution)
    poses = _pose_labels_many(K, world_to_cam, objects, near, view) if objects else []
    return [{**labels, **pose} for labels, pose in zip(amodal, poses)]


def _groups(sizes: list[int], limit: int) -> list[tuple[int, int]]:
    """Consecutive ranges [first, last) of items whose sizes add up to ``limit`` at most (or one item)."""
    groups, first, total = [], 0, 0
    for i, size in enumerate(sizes):
        if i > first and total + size > limit:
            groups.append((first, i))
            first, total = i, 0
        total += size
    return [*groups, (first, len(sizes))] if sizes else []


def _in_world(objects: list) -> list[Mesh]:
    """Every object's triangles as a world :class:`Mesh`: a mesh in the object's frame placed by its matrix, or world
    triangles (T, 3, 3). Meshes with as many vertices (copies of an asset) are placed in one stacked product: numpy's
    matmul calls BLAS once per matrix of the stack, as for one mesh alone."""
    meshes: list = [None] * len(objects)
    alike: dict[int, list[int]] = {}
    for i, (shape, *_) in enumerate(objects):
        if isinstance(shape, Mesh):
            alike.setdefault(len(shape.vertices), []).append(i)
        else:
            meshes[i] = Mesh.of_triangles(shape)
    for count, members in alike.items():
        matrices = np.stack([np.asarray(objects[i][1], dtype=float) for i in members])
        if count < 2:  # a one-row product comes out otherwise (see _product)
            world = np.stack([_product(objects[i][0].vertices, m[:3, :3]) for i, m in zip(members, matrices)])
        else:
            world = np.matmul(np.stack([objects[i][0].vertices for i in members]),
                              matrices[:, :3, :3].transpose(0, 2, 1))
        world += matrices[:, None, :3, 3]
        for i, points in zip(members, world):
            meshes[i] = Mesh(points, objects[i][0].corners)
    return meshes


def _product(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """points (N, 3) @ matrix.T, every row as numpy computes it in a product of many rows: in products of BLAS_ROWS
    rows at most and never of one row (numpy computes a one-row product with another BLAS routine, whose last bits
    differ)."""
    points = np.asarray(points, dtype=float)
    if len(points) == 1:
        return (np.repeat(points, 2, axis=0) @ matrix.T)[:1]
    out = np.empty((len(points), len(matrix)))
    bounds = [*range(0, len(points), BLAS_ROWS), len(points)]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        bounds[-2] -= 1
    for start, stop in zip(bounds, bounds[1:]):
        np.matmul(points[start:stop], matrix.T, out=out[start:stop])
    return out


def _in_front(world_to_cam, meshes: list[Mesh], near: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The meshes' points in the camera's frame (N, 3), the triangles that lie wholly in front of the near plane (their
    corners as rows of those points, (T, 3)) and the mesh each belongs to (its index in ``meshes``)."""
    points = np.concatenate([mesh.vertices for mesh in meshes]) if meshes else np.zeros((0, 3))
    cam = _product(points, world_to_cam[:3, :3])
    cam += world_to_cam[:3, 3]
    sizes = [len(mesh.vertices) for mesh in meshes]
    offsets = np.cumsum(sizes) - sizes
    corners = np.concatenate([mesh.corners + offset for mesh, offset in zip(meshes, offsets.tolist())]) \
        if meshes else np.zeros((0, 3), dtype=np.int64)
    ahead = cam[:, 2] > near
    owners = np.repeat(np.arange(len(meshes)), [len(mesh.corners) for mesh in meshes])
    if ahead.all():  # every point in front (most frames): every triangle
        return cam, corners, owners
    front = np.flatnonzero(ahead[corners[:, 0]] & ahead[corners[:, 1]] & ahead[corners[:, 2]])
    return cam, corners.take(front, axis=0), owners.take(front)


def _amodal_group(K, cam: np.ndarray, corners: np.ndarray, owners: np.ndarray, count: int, width: int,
                  height: int) -> list[dict]:
    """Amodal labels of ``count`` objects from their triangles in front of the camera, ``corners`` (T, 3) rows of the
    points ``cam`` (N, 3) in its frame, ``owners`` giving each triangle's object (non-decreasing): the silhouettes
    rasterised in one pass."""
    uvw = _product(cam, K)
    with np.errstate(divide="ignore", invalid="ignore"):  # points behind the camera are no triangle's corner here
        u, v = uvw[:, 0] / uvw[:, 2], uvw[:, 1] / uvw[:, 2]  # as _to_pixels(K, cam) makes them
    coords = np.empty((6, len(corners)))  # each corner's x and y, a row each: what the rasteriser reads
    for k, column in enumerate(corners.T):
        u.take(column, out=coords[2 * k], mode="clip")  # mode="clip": out= unbuffered (the indices are valid)
        v.take(column, out=coords[2 * k + 1], mode="clip")
    coverage = cover_rows(coords, owners, width, height)
    pixels = coverage.pixel_counts(count).tolist()
    run_owner, starts, ends = coverage.column_runs(height)
    masks, first = np.unique(run_owner, return_index=True)
    rles = dict(zip(masks.tolist(), _rle_from_runs(starts, ends, first, height, width)))
    windows = dict(zip(coverage.sets.tolist(), zip(coverage.top.tolist(), coverage.left.tolist(),
                                                   coverage.rows.tolist(), coverage.cols.tolist())))
    sizes = np.bincount(owners, minlength=count)
    begin = np.cumsum(sizes) - sizes
    # every object's extent: the least and greatest x and y of its corners (min and max are exact: in any order)
    x, y = coords[0::2], coords[1::2]
    heads = begin[sizes > 0]
    lows = iter(np.stack([np.minimum.reduceat(np.minimum(np.minimum(x[0], x[1]), x[2]), heads),
                          np.minimum.reduceat(np.minimum(np.minimum(y[0], y[1]), y[2]), heads)], axis=1).tolist()
                if owners.size else [])
    highs = iter(np.stack([np.maximum.reduceat(np.maximum(np.maximum(x[0], x[1]), x[2]), heads),
                           np.maximum.reduceat(np.maximum(np.maximum(y[0], y[1]), y[2]), heads)], axis=1).tolist()
                 if owners.size else [])
    out = []
    for i, (start, size) in enumerate(zip(begin.tolist(), sizes.tolist())):
        labels: dict = {"amodal_pixels": 0, "amodal_bbox": None, "amodal_bbox_unclipped": None,
                        "amodal_segmentation": None, "truncation": 1.0, "amodal_pixels_all": 0,
                        "amodal_bbox_all": None}
        if size:
            (x0, y0), (x1, y1) = next(lows), next(highs)
            labels["amodal_bbox_unclipped"], labels["amodal_bbox"] = _boxes_of(x0, y0, x1, y1, width, height)
            labels["amodal_pixels"] = pixels[i]
            if pixels[i]:
                labels["amodal_segmentation"] = rles[i]
                labels.update(_whole_silhouette(coords[:, start:start + size], pixels[i],
                                                windows[i], (x0, y0, x1, y1), width, height))
        out.append(labels)
    return out


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


def _pose_labels_many(K, world_to_cam, objects: list, near, view) -> list[dict]:
    """Pose (object-to-camera R, t), size, distance and the 3D box in object, camera and image space of every
    object ((triangles, matrix_world, local_lo, local_hi) each)."""
    matrix = np.array([m for _, m, _, _ in objects], dtype=float)
    bounds = np.array([(lo, hi) for *_, lo, hi in objects], dtype=float)  # (N, 2, 3)
    # pose: object-to-camera rotation (scale removed) and translation, OpenCV camera
    linear = matrix[:, :3, :3]
    square = linear * linear
    scale = np.sqrt((square[:, 0] + square[:, 1]) + square[:, 2])  # each column's norm
    rotation_world = linear / np.where(scale > 0, scale, 1.0)[:, None]
    R = np.matmul(world_to_cam[:3, :3], rotation_world)
    t = (np.matmul(matrix[:, None, :3, 3], world_to_cam[:3, :3].T) + world_to_cam[:3, 3])[:, 0]
    corners_obj = bounds[:, CORNER_BOUNDS, np.arange(3)] * scale[:, None]  # metric, in the object's unscaled frame
    corners_cam = np.matmul(corners_obj, R.transpose(0, 2, 1)) + t[:, None]
    centre = corners_cam[:, 0]
    for k in range(1, 8):
        centre = centre + corners_cam[:, k]
    centre = centre / 8
    distance = np.sqrt(np.matmul(centre[:, None], centre[..., None]))[:, 0, 0]
    size = (bounds[:, 1] - bounds[:, 0]) * scale
    in_front = (corners_cam[..., 2] > near).all(axis=1)
    if view is None or view.identity:
        uvw = np.matmul(corners_cam, K.T)
        with np.errstate(divide="ignore", invalid="ignore"):
            image = (uvw[..., :2] / uvw[..., 2:3]).tolist()
    else:
        image = [pixels.tolist() if valid.all() else None
                 for pixels, valid in (view.lens.project(c) if ok else (None, np.zeros(1, bool))
                                       for c, ok in zip(corners_cam, in_front))]
    return [{"pose": {"R": r, "t": tt}, "size": sz, "distance": d,
             "box3d": {"object": co, "camera": cc, "image": im if ok else None}}
            for r, tt, sz, d, co, cc, im, ok in zip(R.tolist(), t.tolist(), size.tolist(), distance.tolist(),
                                                    corners_obj.tolist(), corners_cam.tolist(), image,
                                                    in_front.tolist())]


def _whole_silhouette(coords: np.ndarray, visible: int, window: tuple[int, int, int, int], extent, width: int,
                      height: int) -> dict:
    """Pixel count and box of the whole silhouette, also where the image border cuts it, on the canvas
    BOP's definitions use (one image beyond each border), and the truncation that follows. ``coords``: its
    triangles as the rasteriser's six rows (6, T), ``visible``: its pixels in the image, ``window``: their bounding
    box (top, left, rows, columns)."""
    x0, y0, x1, y1 = extent
    ox, oy = int(np.floor(max(x0, -width))), int(np.floor(max(y0, -height)))
    ex, ey = int(np.ceil(min(x1, 2 * width))), int(np.ceil(min(y1, 2 * height)))
    top, left, rows, cols = window
    total, box = visible, [left, top, cols, rows]
    if ox < 0 or oy < 0 or ex > width or ey > height:
        whole, wtop, wleft = rasterize_window(coords.T.reshape(-1, 3, 2), ex - ox, ey - oy, origin=(ox, oy))
        total = max(int(whole.sum()), visible)
        box = [ox + wleft, oy + wtop, whole.shape[1], whole.shape[0]] if whole.size else None
    return {"truncation": float(1.0 - visible / total), "amodal_pixels_all": total, "amodal_bbox_all": box}


def visibility(visible_pixels: int, amodal_pixels: int) -> float:
    """Visible fraction of the object's silhouette inside the image (0 when it has none)."""
    if amodal_pixels <= 0:
        return 0.0
    return float(min(1.0, visible_pixels / amodal_pixels))


def keypoint_labels(K, world_to_cam, points: dict[str, list[float]], index: np.ndarray, depth: np.ndarray,
                    instance_id: int, lens: "Lens | None" = None) -> list[dict]:
    """COCO-style keypoints: v = 2 visible, 1 in the image but hidden (by another object or the object's
    own surface), 0 outside the image or behind the camera (then x = y = 0)."""
    return keypoint_labels_many(K, world_to_cam, [(points, instance_id)], index, depth, lens)[0]


def keypoint_labels_many(K, world_to_cam, objects: list[tuple[dict[str, list[float]], int]], index: np.ndarray,
                         depth: np.ndarray, lens: "Lens | None" = None) -> list[list[dict]]:
    """:func:`keypoint_labels` of many objects, ``objects`` a list of (points, instance id), in one pass."""
    K, world_to_cam = np.asarray(K, float), np.asarray(world_to_cam, float)
    height, width = index.shape
    named = [(name, points[name], instance_id) for points, instance_id in objects for name in sorted(points)]
    # each point moved and projected as one point alone (numpy's one-row products, stacked: one call each)
    cams = _to_camera(world_to_cam, np.asarray([point for _, point, _ in named], float).reshape(-1, 1, 3))[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):  # points behind the camera are not projected below
        pixels = _to_pixels(K, cams[:, None])[:, 0]
    out = []
    for (name, _, instance_id), cam, (x, y) in zip(named, cams, pixels):
        if cam[2] <= 0:
            out.append({"name": name, "x": 0.0, "y": 0.0, "v": 0})
            continue
        if lens is not None and lens.distorted:
            (x, y), ok = (a[0] for a in lens.project(cam[None]))
            if not ok:
                out.append({"name": name, "x": 0.0, "y": 0.0, "v": 0})
                continue
        col, row = int(np.floor(x)), int(np.floor(y))
        if not (0 <= col < width and 0 <= row < height):
            out.append({"name": name, "x": 0.0, "y": 0.0, "v": 0})
            continue
        surface = depth[row, col]
        on_top = index[row, col] == instance_id and cam[2] <= surface + max(0.01, 0.01 * surface)
        out.append({"name": name, "x": float(x), "y": float(y), "v": 2 if on_top else 1})
    ends = np.cumsum([len(points) for points, _ in objects]).tolist()
    return [out[end - len(points):end] for (points, _), end in zip(objects, ends)]
