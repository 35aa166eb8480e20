"""Mask outlines as polygons through pixel corners, for the polygon formats (COCO polygons, YOLO seg).

A pixel at column c, row r is the square [c, c+1) x [r, r+1); its outline runs along those edges. OpenCV
traces contours through pixel centres (half a pixel inside), so the mask is traced at twice its size,
where every pixel is a 2x2 block: the boundary block at index u has its outer edge at the corner
ceil(u / 2) of the original grid, exactly. Filled by pycocotools or OpenCV, the outlines give back the
mask pixel for pixel when it has no holes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Outline:
    parts: list[np.ndarray]  # outer boundaries, (N, 2) float corner coordinates in the image
    holes: list[np.ndarray]  # boundaries of holes, likewise


def trace(mask: np.ndarray) -> Outline:
    """Every outer boundary and hole of a binary mask, through pixel corners."""
    import cv2

    mask = np.asarray(mask, bool)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return Outline([], [])
    r0, c0 = int(rows[0]), int(cols[0])
    crop = mask[r0:rows[-1] + 1, c0:cols[-1] + 1].astype(np.uint8)
    doubled = np.pad(np.kron(crop, np.ones((2, 2), np.uint8)), 1)  # the pad keeps edges off the border
    contours, hierarchy = cv2.findContours(doubled, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    outline = Outline([], [])
    for contour, (_, _, _, parent) in zip(contours, hierarchy[0] if contours else ()):
        points = contour.reshape(-1, 2) // 2  # undo the pad (u = index - 1), then ceil(u / 2)
        keep = np.r_[True, np.any(points[1:] != points[:-1], axis=1)]
        points = points[keep].astype(float) + (c0, r0)
        if len(points) > 1 and np.array_equal(points[0], points[-1]):
            points = points[:-1]
        if len(points) >= 3:
            (outline.holes if parent >= 0 else outline.parts).append(points)
    return outline


def flat(points: np.ndarray) -> list[float]:
    return [float(v) for v in points.ravel()]


def merge_parts(parts: list[np.ndarray]) -> np.ndarray:
    """One polygon through every part: consecutive parts are joined at their closest vertices by a bridge
    walked there and back (zero width), as Ultralytics joins the parts of a COCO instance for YOLO seg.
    Holes given as parts stay holes where the polygon is filled by parity (OpenCV's fillPoly)."""
    if len(parts) == 1:
        return parts[0]
    links = []  # (exit vertex in part i, entry vertex in part i + 1)
    for a, b in zip(parts, parts[1:]):
        distances = ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1)
        links.append(np.unravel_index(int(np.argmin(distances)), distances.shape))

    def walk(k: int, entry: int) -> list[np.ndarray]:
        part = np.roll(parts[k], -entry, axis=0)  # start at the entry vertex
        if k == len(parts) - 1:
            return [part, part[:1]]
        exit_at = (links[k][0] - entry) % len(part)
        return [part[:exit_at + 1], *walk(k + 1, links[k][1]), part[exit_at:], part[:1]]

    return np.concatenate(walk(0, 0))
