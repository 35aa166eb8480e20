"""KITTI object format: ``image_2/``, ``label_2/*.txt`` and ``calib/*.txt`` per frame.

Label line: type truncated occluded alpha left top right bottom height width length x y z rotation_y,
three decimals. KITTI's boxes turn about the vertical axis only (rotation_y), so they are written in a
gravity-aligned rectified frame: ``R0_rect`` rotates the camera frame (OpenCV: x right, y down, z
forward) to one whose y axis points down along gravity and whose z axis is the camera's view direction
made horizontal. A level camera has R0_rect = I; under a tilted camera upright objects stay exact.
``P0..P3`` = [K R0_rect^T | 0] project rectified coordinates (the labels' frame) into the image, as KITTI's
devkit does with P2 (K itself is P2[:, :3] R0_rect). Location is the bottom centre of the box; height is
along gravity, length along the object's heading. An object that is not upright (no axis within
``UPRIGHT_DEGREES`` of vertical) gets the smallest upright box around its 3D box, and is counted. The 2D
box is the amodal box clipped to the image. Occlusion: 0 (visibility >= 0.9), 1 (>= 0.5), 2 (below).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .classmap import ClassMap
from .frames import Filters, frames, link_or_copy
from .native import atomic_write_text

UPRIGHT_DEGREES = 1.0
WORLD_DOWN = np.array([0.0, 0.0, -1.0])  # Blender's world: z up


def occlusion_level(visibility: float) -> int:
    return 0 if visibility >= 0.9 else 1 if visibility >= 0.5 else 2


def rectification(world_to_cam: np.ndarray) -> np.ndarray:
    """R0_rect (3x3, camera -> rectified) of a camera with this world-to-camera transform."""
    down = np.asarray(world_to_cam)[:3, :3] @ WORLD_DOWN
    forward = np.array([0.0, 0.0, 1.0]) - down * down[2]
    if np.linalg.norm(forward) < 1e-6:  # looking straight down or up: the camera's y axis becomes forward
        forward = np.array([0.0, 1.0, 0.0]) - down * down[1]
    forward /= np.linalg.norm(forward)
    return np.stack([np.cross(down, forward), down, forward])


def box_corners(h: float, w: float, l: float, location, rotation_y: float) -> np.ndarray:
    """The 8 corners (rectified frame) of a KITTI box, as KITTI's devkit builds them."""
    x = np.array([l, l, -l, -l, l, l, -l, -l]) / 2
    y = np.array([0, 0, 0, 0, -h, -h, -h, -h])
    z = np.array([w, -w, -w, w, w, -w, -w, w]) / 2
    c, s = math.cos(rotation_y), math.sin(rotation_y)
    rotation = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return (rotation @ np.stack([x, y, z])).T + np.asarray(location)


def box_of(obj: dict, R0: np.ndarray) -> tuple[tuple[float, float, float], np.ndarray, float, bool]:
    """((height, width, length), bottom centre, rotation_y, upright) of an object in the rectified frame."""
    axes = R0 @ np.array(obj["pose"]["R"])  # the object's unit axes in the rectified frame (columns)
    size = np.array(obj["size"])
    up = int(np.argmax(np.abs(axes[1])))
    upright = abs(axes[1, up]) >= math.cos(math.radians(UPRIGHT_DEGREES))
    heading, side = [i for i in range(3) if i != up]
    direction = axes[:, heading]
    rotation_y = math.atan2(-direction[2], direction[0])
    corners = np.array(obj["box3d"]["camera"]) @ R0.T
    if upright:
        centre = corners.mean(axis=0)
        height, width, length = size[up], size[side], size[heading]
    else:  # the smallest box about the vertical, turned by rotation_y, that holds the object's box
        c, s = math.cos(rotation_y), math.sin(rotation_y)
        turn = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        local = corners @ turn  # into the box's own axes
        lo, hi = local.min(axis=0), local.max(axis=0)
        centre = turn @ ((lo + hi) / 2)
        length, height, width = hi - lo
    bottom = centre + np.array([0.0, height / 2, 0.0])
    return (float(height), float(width), float(length)), bottom, rotation_y, bool(upright)


def label_line(obj: dict, class_name: str, R0: np.ndarray) -> tuple[str, bool]:
    (height, width, length), bottom, rotation_y, upright = box_of(obj, R0)
    alpha = (rotation_y - math.atan2(bottom[0], bottom[2]) + math.pi) % (2 * math.pi) - math.pi
    x, y, w, h = obj.get("amodal_bbox") or obj["bbox"]
    name = class_name.replace(" ", "_")
    values = [x, y, x + w, y + h, height, width, length, *bottom, rotation_y]
    return (f"{name} {min(max(obj.get('truncation', 0.0), 0.0), 1.0):.3f} "
            f"{occlusion_level(obj.get('visibility', 1.0))} {alpha:.3f} " + " ".join(f"{v:.3f}" for v in values),
            upright)


def calib_text(K: np.ndarray, R0: np.ndarray) -> str:
    def row(matrix):
        return " ".join(f"{v:.12e}" for v in np.asarray(matrix).ravel())

    P = np.hstack([K @ R0.T, np.zeros((3, 1))])
    eye34 = np.hstack([np.eye(3), np.zeros((3, 1))])
    return "".join(f"P{i}: {row(P)}\n" for i in range(4)) + f"R0_rect: {row(R0)}\nTr_velo_to_cam: {row(eye34)}\n" \
        f"Tr_imu_to_velo: {row(eye34)}\n"


def export(root: Path, out: Path, class_map: ClassMap, filters: Filters) -> dict:
    counts = {"images": 0, "objects": 0, "not_upright": 0}
    for folder in ("image_2", "label_2", "calib"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for frame in frames(root, class_map, filters):
        image = frame.path("image")
        link_or_copy(image, out / "image_2" / image.name)
        # without the camera's pose (annotations made by hand) there is no gravity to level to
        R0 = rectification(frame.world_to_cam) if "world_to_cam" in frame.annotation["camera"] else np.eye(3)
        lines = [label_line(obj, entry.name, R0) for obj, entry in frame.objects]
        atomic_write_text(out / "label_2" / f"{frame.stem}.txt", "".join(f"{line}\n" for line, _ in lines))
        atomic_write_text(out / "calib" / f"{frame.stem}.txt", calib_text(frame.K, R0))
        counts["images"] += 1
        counts["objects"] += len(lines)
        counts["not_upright"] += sum(not upright for _, upright in lines)
    return counts
