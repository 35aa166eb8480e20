"""KITTI object format: ``image_2/``, ``label_2/*.txt`` and ``calib/*.txt`` per frame.

Label line: type truncated occluded alpha left top right bottom height width length x y z rotation_y.
Camera coordinates are KITTI's (= OpenCV: x right, y down, z forward), location is the bottom centre of
the 3D box, dimensions are metres along the object's up (height), y (width) and x (length) axes,
rotation_y is the yaw of the object's x axis about the camera's y axis, alpha the observation angle.
The 2D box is the amodal box clipped to the image (KITTI boxes cover the whole object). Occlusion
levels come from the visibility: 0 (>= 0.9), 1 (>= 0.5), 2 (below).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .classmap import ClassMap
from .frames import Filters, frames, link_or_copy
from .native import atomic_write_text


def occlusion_level(visibility: float) -> int:
    return 0 if visibility >= 0.9 else 1 if visibility >= 0.5 else 2


def label_line(obj: dict, class_name: str) -> str:
    R = np.array(obj["pose"]["R"])
    length, width, height = obj["size"]
    corners = np.array(obj["box3d"]["camera"])
    centre = corners.mean(axis=0)
    bottom = centre - R[:, 2] * height / 2  # the object's up axis is its local z
    x_axis = R[:, 0]
    rotation_y = math.atan2(-x_axis[2], x_axis[0])
    alpha = (rotation_y - math.atan2(bottom[0], bottom[2]) + math.pi) % (2 * math.pi) - math.pi
    x, y, w, h = obj.get("amodal_bbox") or obj["bbox"]
    name = class_name.replace(" ", "_")
    return (f"{name} {min(max(obj.get('truncation', 0.0), 0.0), 1.0):.2f} "
            f"{occlusion_level(obj.get('visibility', 1.0))} {alpha:.2f} "
            f"{x:.2f} {y:.2f} {x + w:.2f} {y + h:.2f} {height:.2f} {width:.2f} {length:.2f} "
            f"{bottom[0]:.2f} {bottom[1]:.2f} {bottom[2]:.2f} {rotation_y:.2f}")


def calib_text(K: np.ndarray) -> str:
    P = np.hstack([K, np.zeros((3, 1))])
    flat = " ".join(f"{v:.12e}" for v in P.ravel())
    eye34 = " ".join(f"{v:.12e}" for v in np.hstack([np.eye(3), np.zeros((3, 1))]).ravel())
    eye33 = " ".join(f"{v:.12e}" for v in np.eye(3).ravel())
    return "".join(f"P{i}: {flat}\n" for i in range(4)) + f"R0_rect: {eye33}\nTr_velo_to_cam: {eye34}\n" \
        f"Tr_imu_to_velo: {eye34}\n"


def export(root: Path, out: Path, class_map: ClassMap, filters: Filters) -> dict:
    images = objects = 0
    for folder in ("image_2", "label_2", "calib"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for frame in frames(root, class_map, filters):
        image = frame.path("image")
        link_or_copy(image, out / "image_2" / image.name)
        lines = [label_line(obj, entry.name) for obj, entry in frame.objects]
        atomic_write_text(out / "label_2" / f"{frame.stem}.txt", "".join(f"{line}\n" for line in lines))
        atomic_write_text(out / "calib" / f"{frame.stem}.txt", calib_text(frame.K))
        images += 1
        objects += len(lines)
    return {"images": images, "objects": objects}
