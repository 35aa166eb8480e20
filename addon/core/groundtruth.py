"""Labels from pixels and cameras (numpy only): instance statistics, boxes, RLE masks, camera frames.

Pixel convention: a pixel at column c, row r covers [c, c+1) x [r, r+1); a box is COCO [x, y, w, h],
so one pixel at (c, r) has the box [c, r, 1, 1]. Camera convention: OpenCV (x right, y down, z forward).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
from pycocotools import mask as coco_mask

from .raster import rasterize

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


_LUT_LIMIT = 1 << 22  # id ranges up to this size are remapped through a lookup table, wider ones by search
_FEW_IDS = 256  # above this many requested ids, absent ones are dropped before the row/column tables


def _as_id_image(index) -> np.ndarray:
    index = np.asarray(index)
    if index.ndim != 2 or not np.issubdtype(index.dtype, np.integer):
        raise TypeError(f"an instance-id image must be a 2D integer array, got {index.dtype} {index.shape}; "
                        "round a float Object Index pass first: np.rint(index).astype(np.int32)")
    return index


def _compact(index: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """``index`` with each wanted id replaced by its position in ``wanted`` (sorted) plus one, others by 0."""
    lo, hi = int(index.min()), int(index.max())
    if hi - lo < _LUT_LIMIT:
        lut = np.zeros(hi - lo + 1, dtype=np.int32)
        inside = (wanted >= lo) & (wanted <= hi)
        lut[wanted[inside] - lo] = np.flatnonzero(inside) + 1
        return lut[index - lo] if lo else lut[index]
    pos = np.minimum(np.searchsorted(wanted, index), len(wanted) - 1)
    return np.where(wanted[pos] == index, pos + 1, 0).astype(np.int32)


def _region_rle(region: np.ndarray, r0: int, c0: int, height: int, width: int) -> dict:
    """COCO RLE of a (height, width) mask that is ``region`` at (r0, c0) and False elsewhere. Runs are
    counted over the region's columns only (column-major, as COCO wants); pycocotools compresses them."""
    h, w = region.shape
    band = np.zeros((w, height), dtype=bool)  # columns c0..c0+w-1, each a full image column
    band[:, r0:r0 + h] = region.T
    seq = band.ravel()
    edges = np.flatnonzero(seq[1:] != seq[:-1]) + 1
    runs = np.diff(np.concatenate(([0], edges, [seq.size]))).tolist()
    if seq[0]:
        runs.insert(0, 0)  # runs alternate and start with background
    runs[0] += c0 * height  # the empty columns before the band ...
    tail = (width - c0 - w) * height  # ... and after it
    if tail:
        if len(runs) % 2:
            runs[-1] += tail
        else:
            runs.append(tail)
    encoded = coco_mask.frPyObjects({"size": [height, width], "counts": runs}, height, width)
    return {"size": [height, width], "counts": encoded["counts"].decode("ascii")}


def instances_from_mask(index: np.ndarray, ids: Iterable[int]) -> dict[int, InstanceLabel]:
    """Visible pixels, box and RLE of every requested id present in the instance image (absent ids are
    left out). One pass over the image finds every id's rows and columns; each mask is then cut from
    its box only, so the cost grows with the image plus the objects' boxes, not image x objects."""
    index = _as_id_image(index)
    wanted = np.unique(np.fromiter((int(i) for i in ids), dtype=np.int64))
    if wanted.size == 0 or index.size == 0:
        return {}
    height, width = index.shape
    compact = _compact(index, wanted)
    if wanted.size > _FEW_IDS:  # many ids asked for: keep the row and column tables to the ids present
        present = np.flatnonzero(np.bincount(compact.ravel(), minlength=wanted.size + 1)[1:])
        remap = np.zeros(wanted.size + 1, dtype=np.int32)
        remap[present + 1] = np.arange(1, present.size + 1)
        compact, wanted = remap[compact], wanted[present]
    k = wanted.size + 1  # pixels per (row, id) and (column, id): every id's rows, columns and area at once
    rows = np.bincount((compact + (np.arange(height) * k)[:, None]).ravel(), minlength=height * k).reshape(height, k)
    cols = np.bincount((compact + (np.arange(width) * k)[None, :]).ravel(), minlength=width * k).reshape(width, k)
    counts = rows.sum(axis=0)
    labels = {}
    for slot in (np.flatnonzero(counts[1:]) + 1).tolist():
        r = np.flatnonzero(rows[:, slot])
        c = np.flatnonzero(cols[:, slot])
        r0, r1, c0, c1 = int(r[0]), int(r[-1]) + 1, int(c[0]), int(c[-1]) + 1
        region = compact[r0:r1, c0:c1] == slot
        iid = int(wanted[slot - 1])
        labels[iid] = InstanceLabel(iid, int(counts[slot]), [c0, r0, c1 - c0, r1 - r0],
                                    _region_rle(region, r0, c0, height, width))
    return labels


OPENCV_CONVENTION = "opencv: x right, y down, z forward; pixel (0,0) is the top-left corner of the image"


def intrinsics(width: int, height: int, focal_px_x: float, focal_px_y: float,
               cx: float | None = None, cy: float | None = None) -> list[list[float]]:
    """The 3x3 K of a pinhole camera in pixels; the principal point defaults to the image centre."""
    if width <= 0 or height <= 0 or focal_px_x <= 0 or focal_px_y <= 0:
        raise ValueError(f"intrinsics need a positive resolution and focal lengths, got {width}x{height}, "
                         f"f=({focal_px_x}, {focal_px_y})")
    cx = width / 2.0 if cx is None else cx
    cy = height / 2.0 if cy is None else cy
    return [[float(focal_px_x), 0.0, float(cx)], [0.0, float(focal_px_y), float(cy)], [0.0, 0.0, 1.0]]


def _matrix(value, shape: tuple[int, int], name: str) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.shape != shape or not np.isfinite(array).all():
        raise ValueError(f"{name} must be a finite {shape[0]}x{shape[1]} matrix, got shape {array.shape}")
    return array


def blender_to_opencv_camera(matrix_world) -> tuple[np.ndarray, np.ndarray]:
    """(camera-to-world, world-to-camera) 4x4 in the OpenCV convention from a Blender camera's matrix_world.
    Scale on the camera object is ignored (as Blender's renderer does): the axes are normalised."""
    cam_to_world = _matrix(matrix_world, (4, 4), "a camera's matrix_world") @ BLENDER_TO_OPENCV
    scale = np.linalg.norm(cam_to_world[:3, :3], axis=0)
    if (scale < 1e-12).any():
        raise ValueError("the camera's matrix_world has a zero scale axis; it has no orientation")
    cam_to_world[:3, :3] /= scale
    rotation, translation = cam_to_world[:3, :3], cam_to_world[:3, 3]
    world_to_cam = np.eye(4)
    world_to_cam[:3, :3] = rotation.T
    world_to_cam[:3, 3] = -rotation.T @ translation
    return cam_to_world, world_to_cam


@dataclass
class CameraModel:
    """A pinhole camera in the OpenCV convention: K (3x3, pixels), resolution (width, height) and the
    extrinsics world_to_camera / camera_to_world (4x4). Give either extrinsic; the other is derived."""
    K: np.ndarray
    resolution: tuple[int, int]
    world_to_camera: np.ndarray | None = None
    camera_to_world: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.K = _matrix(self.K, (3, 3), "K")
        width, height = (int(v) for v in self.resolution)
        if width <= 0 or height <= 0:
            raise ValueError(f"a camera resolution must be positive (width, height), got {self.resolution}")
        self.resolution = (width, height)
        if self.world_to_camera is None and self.camera_to_world is None:
            raise ValueError("a CameraModel needs world_to_camera or camera_to_world")
        if self.world_to_camera is None:
            self.world_to_camera = np.linalg.inv(_matrix(self.camera_to_world, (4, 4), "camera_to_world"))
        self.world_to_camera = _matrix(self.world_to_camera, (4, 4), "world_to_camera")
        if self.camera_to_world is None:
            self.camera_to_world = np.linalg.inv(self.world_to_camera)
        self.camera_to_world = _matrix(self.camera_to_world, (4, 4), "camera_to_world")

    @classmethod
    def from_blender(cls, matrix_world, K, resolution: tuple[int, int]) -> CameraModel:
        """From a Blender camera's matrix_world (looking down its local -Z, +Y up)."""
        cam_to_world, world_to_cam = blender_to_opencv_camera(matrix_world)
        return cls(K, resolution, world_to_cam, cam_to_world)

    def project(self, points) -> np.ndarray:
        """World points (N, 3) -> pixel coordinates (N, 2); points behind the camera give meaningless values."""
        return project(self.K, self.world_to_camera, np.atleast_2d(points))

    def to_dict(self) -> dict:
        """JSON-ready, with the key names of the frame metadata (``K``, ``world_to_cam``, ``cam_to_world``)."""
        return {"convention": OPENCV_CONVENTION, "resolution": list(self.resolution), "K": self.K.tolist(),
                "world_to_cam": self.world_to_camera.tolist(), "cam_to_world": self.camera_to_world.tolist()}


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
                    local_lo, local_hi, near: float = 1e-4) -> dict:
    """Labels of one object computed from its evaluated triangles (world space, (T, 3, 3)) and transform.

    Triangles with a corner behind the camera's near plane are left out of the amodal area (an object
    that reaches behind the camera is rare in datasets; its amodal area is then underestimated)."""
    K, world_to_cam, matrix_world = (np.asarray(m, dtype=float) for m in (K, world_to_cam, matrix_world))
    width, height = resolution
    cam_tris = _to_camera(world_to_cam, np.asarray(triangles, dtype=float).reshape(-1, 3)).reshape(-1, 3, 3)
    front = (cam_tris[..., 2] > near).all(axis=1)
    px_tris = _to_pixels(K, cam_tris[front])
    labels: dict = {"amodal_pixels": 0, "amodal_bbox": None, "amodal_bbox_unclipped": None,
                    "amodal_segmentation": None, "truncation": 1.0}
    if len(px_tris):
        pts = px_tris.reshape(-1, 2)
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        labels["amodal_bbox_unclipped"] = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
        cx0, cy0, cx1, cy1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height))
        if cx1 > cx0 and cy1 > cy0:
            labels["amodal_bbox"] = [float(cx0), float(cy0), float(cx1 - cx0), float(cy1 - cy0)]
        inside = rasterize(px_tris, width, height)
        labels["amodal_pixels"] = int(inside.sum())
        if labels["amodal_pixels"]:
            labels["amodal_segmentation"] = rle_encode(inside)
        # the whole silhouette, on a canvas reaching past the image (at most two images each way)
        ox, oy = int(np.floor(max(x0, -2 * width))), int(np.floor(max(y0, -2 * height)))
        ex, ey = int(np.ceil(min(x1, 3 * width))), int(np.ceil(min(y1, 3 * height)))
        if labels["amodal_pixels"] and (ox < 0 or oy < 0 or ex > width or ey > height):
            total = int(rasterize(px_tris, ex - ox, ey - oy, origin=(ox, oy)).sum())
            labels["truncation"] = float(1.0 - labels["amodal_pixels"] / max(total, labels["amodal_pixels"]))
        elif labels["amodal_pixels"]:
            labels["truncation"] = 0.0
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
                  "image": _to_pixels(K, corners_cam).tolist() if (corners_cam[:, 2] > near).all() else None},
    })
    return labels


def visibility(visible_pixels: int, amodal_pixels: int) -> float:
    """Visible fraction of the object's silhouette inside the image (0 when it has none)."""
    if amodal_pixels <= 0:
        return 0.0
    return float(min(1.0, visible_pixels / amodal_pixels))


def keypoint_labels(K, world_to_cam, points: dict[str, list[float]], index: np.ndarray, depth: np.ndarray,
                    instance_id: int) -> list[dict]:
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
        x, y = _to_pixels(K, cam[None])[0]
        col, row = int(np.floor(x)), int(np.floor(y))
        if not (0 <= col < width and 0 <= row < height):
            out.append({"name": name, "x": 0.0, "y": 0.0, "v": 0})
            continue
        surface = depth[row, col]
        on_top = index[row, col] == instance_id and cam[2] <= surface + max(0.01, 0.01 * surface)
        out.append({"name": name, "x": float(x), "y": float(y), "v": 2 if on_top else 1})
    return out
