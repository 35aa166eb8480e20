"""Labels from pixels and cameras (numpy only): instance statistics, boxes, RLE masks, camera frames.

Pixel convention: a pixel at column c, row r covers [c, c+1) x [r, r+1); a box is COCO [x, y, w, h],
so one pixel at (c, r) has the box [c, r, 1, 1]. Camera convention: OpenCV (x right, y down, z forward).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
from pycocotools import mask as coco_mask

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
    """Visible pixels, box and RLE of every requested id present in the instance image."""
    index = np.asarray(index)
    wanted = np.asarray(sorted(set(int(i) for i in ids)), dtype=np.int64)
    if wanted.size == 0:
        return {}
    counts = np.bincount(index.ravel().clip(0), minlength=int(wanted.max()) + 1)
    fortran = np.asfortranarray(index)  # pycocotools wants column-major masks; comparisons keep the layout
    labels = {}
    for iid in wanted:
        pixels = int(counts[iid])
        if pixels == 0:
            continue
        mask = fortran == iid
        encoded = coco_mask.encode(mask.view(np.uint8))
        labels[int(iid)] = InstanceLabel(int(iid), pixels, bbox_of_mask(mask),
                                         {"size": [int(s) for s in encoded["size"]],
                                          "counts": encoded["counts"].decode("ascii")})
    return labels


def blender_to_opencv_camera(matrix_world) -> tuple[np.ndarray, np.ndarray]:
    """(camera-to-world, world-to-camera) 4x4 in the OpenCV convention from a Blender camera's
    matrix_world (which must be a rigid transform: no scale)."""
    cam_to_world = np.asarray(matrix_world, dtype=float) @ BLENDER_TO_OPENCV
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
