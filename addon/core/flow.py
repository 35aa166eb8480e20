"""Optical flow from the render's Vector pass, and warping one frame onto another (numpy only).

Convention (written in the metadata of every frame that has flow): ``forward[r, c] = (dx, dy)`` is the
displacement in pixels, x right and y down, of the surface point seen at the centre of pixel (c, r) in
frame t to where that point is seen in frame t+1; ``backward`` the same towards frame t-1. So frame
t+1 sampled at (c + 0.5 + dx, r + 0.5 + dy) shows what frame t shows at pixel (c, r), wherever that
point is not occluded in frame t+1. Background (no surface) has flow 0.

Blender's Vector pass (checked on Cycles 5.x with a keyframed object, y up in Blender's image space):
X, Y = position in the previous frame minus the current position; Z, W = current minus next. Cycles
leaves the pass empty when motion blur is on, so the engine renders the passes without blur.
"""
from __future__ import annotations

import numpy as np

CONVENTION = ("pixels, x right, y down; forward[r, c] = where the point seen at the centre of pixel (c, r) in frame "
              "t is seen in frame t+1, minus that centre; backward the same towards t-1; background 0")


def flow_from_vector(x: np.ndarray, y: np.ndarray, z: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Vector pass's channels (rows top first) -> (forward, backward) flow, each (H, W, 2) float32."""
    forward = np.stack([-z, w], axis=-1).astype(np.float32)
    backward = np.stack([x, -y], axis=-1).astype(np.float32)
    return forward, backward


def flow_through_view(view, flow_render: np.ndarray) -> np.ndarray:
    """Flow measured in a pinhole render -> flow in the view's (distorted) image: every output pixel
    takes its render pixel's motion, and both ends are projected through the lens."""
    if view.identity:
        return flow_render
    moved = view.start + view.nearest(flow_render.astype(np.float32, copy=False))
    end = view.lens.to_pixels(view.lens.distort(view.source.from_pixels(moved)))
    out = (end - view.centres).astype(np.float32, copy=False)
    out[view.rows < 0] = 0.0
    return out


def warp(image: np.ndarray, flow: np.ndarray, nearest: bool = False) -> np.ndarray:
    """``image`` (frame t+1 for forward flow of frame t) sampled where ``flow`` says each pixel of frame t
    went: the result lines up with frame t. Nearest for ids, bilinear otherwise (OpenCV's remap)."""
    import cv2

    h, w = flow.shape[:2]
    cols, rows = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x, map_y = cols + flow[..., 0].astype(np.float32), rows + flow[..., 1].astype(np.float32)
    mode = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    if nearest:  # OpenCV rounds; the pixel containing the point is floor(x + 0.5) in its convention
        map_x, map_y = np.floor(map_x + 0.5), np.floor(map_y + 0.5)
    return cv2.remap(image, map_x, map_y, mode, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
