"""Lens models, defined once: projection, distortion, undistortion and the remap from a pinhole render.

Models (OpenCV's, with OpenCV's coefficient order):
    pinhole        no distortion
    brown_conrady  radial k1, k2, k3 and tangential p1, p2 (``cv2.projectPoints`` with [k1, k2, p1, p2, k3])
    fisheye        equidistant / Kannala-Brandt k1..k4 (``cv2.fisheye.projectPoints``)

Pixel convention (the project's): (0, 0) is the top-left corner of the image and a pixel's centre is at
(col + 0.5, row + 0.5); K is given in that convention. OpenCV puts pixel centres on integers, so the
same camera has ``K_opencv = K - 0.5`` in cx and cy; projections agree once that shift is made.

The engine renders a pinhole image (:func:`render_view`) wide enough to cover the distorted field of
view; :class:`View` maps every pass of that render onto the distorted image (nearest for ids, masks,
depth and normals, never blended; bilinear for colour) and every label is projected with
:meth:`Lens.project`, so pixels and labels agree by construction.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np

Model = Literal["pinhole", "brown_conrady", "fisheye"]
COEFFS = {"pinhole": (), "brown_conrady": ("k1", "k2", "p1", "p2", "k3"), "fisheye": ("k1", "k2", "k3", "k4")}
MAX_RENDER_PIXELS = 4.0  # the pinhole render holds at most this many times the output's pixels
NEWTON_STEPS = 20


class LensError(ValueError):
    """A lens the renderer cannot produce (e.g. a field of view a pinhole render cannot cover)."""


@dataclass(frozen=True)
class Lens:
    """An image-forming camera: intrinsics K (3x3, project's pixel convention), image size (W, H) and
    a distortion model with its coefficients (OpenCV order, see COEFFS)."""

    K: np.ndarray
    size: tuple[int, int]
    model: Model = "pinhole"
    coeffs: tuple[float, ...] = ()
    _limit: float = field(default=math.inf, init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "K", np.asarray(self.K, dtype=float))
        if self.model not in COEFFS:
            raise LensError(f"unknown lens model {self.model!r}; choose from {', '.join(COEFFS)}")
        if len(self.coeffs) != len(COEFFS[self.model]):
            raise LensError(f"a {self.model} lens has coefficients {COEFFS[self.model]}, got {len(self.coeffs)}")
        object.__setattr__(self, "coeffs", tuple(float(c) for c in self.coeffs))
        object.__setattr__(self, "_limit", _monotonic_limit(self.model, self.coeffs))

    @property
    def distorted(self) -> bool:
        return self.model == "fisheye" or any(self.coeffs)  # an equidistant fisheye bends even with k = 0

    def record(self) -> dict:
        """The lens as metadata: model, named coefficients and the OpenCV forms of K and D."""
        names = COEFFS[self.model]
        K_cv = self.K.copy()
        K_cv[:2, 2] -= 0.5
        return {"model": self.model, "coefficients": dict(zip(names, self.coeffs)),
                "opencv": {"K": K_cv.tolist(), "D": list(self.coeffs),
                           "function": {"pinhole": "cv2.projectPoints", "brown_conrady": "cv2.projectPoints",
                                        "fisheye": "cv2.fisheye.projectPoints"}[self.model]}}

    # -- normalised image coordinates (x/z, y/z) -----------------------------------------------------------
    def distort(self, xy: np.ndarray) -> np.ndarray:
        """Undistorted normalised coordinates (N, 2) -> distorted normalised coordinates (N, 2)."""
        xy = np.asarray(xy)
        xy = xy if xy.dtype in (np.float32, np.float64) else xy.astype(float)
        if self.model == "pinhole":
            return xy.copy()
        x, y = xy[..., 0], xy[..., 1]
        r2 = x * x + y * y
        if self.model == "brown_conrady":
            k1, k2, p1, p2, k3 = self.coeffs
            radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
            return np.stack([x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
                             y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y], axis=-1)
        r = np.sqrt(r2)
        theta = np.arctan(r)
        scale = np.divide(_theta_d(theta, self.coeffs), r, out=np.ones_like(r), where=r > 1e-12)
        return xy * scale[..., None]

    def undistort(self, xy_d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distorted normalised coordinates -> (undistorted normalised coordinates, valid). Invalid where
        no undistorted point inside the lens's monotonic range maps there (or it lies behind 90 degrees)."""
        xy_d = np.asarray(xy_d, dtype=float)
        if not self.distorted:
            return xy_d.copy(), np.ones(xy_d.shape[:-1], dtype=bool)
        if self.model == "fisheye":
            rd = np.linalg.norm(xy_d, axis=-1)
            theta = rd.copy()
            for _ in range(NEWTON_STEPS):
                step = (_theta_d(theta, self.coeffs) - rd) / _theta_d_slope(theta, self.coeffs)
                theta = np.clip(theta - step, 0.0, math.pi / 2)
                if np.abs(step).max(initial=0.0) < 1e-14:
                    break
            valid = (np.abs(_theta_d(theta, self.coeffs) - rd) < 1e-9 * np.maximum(1, rd)) & (theta < self._limit) \
                & (theta < math.pi / 2 - 1e-6)
            scale = np.divide(np.tan(theta), rd, out=np.ones_like(rd), where=rd > 1e-12)
            return xy_d * scale[..., None], valid
        xy = xy_d.copy()
        for _ in range(NEWTON_STEPS):
            residual = self.distort(xy) - xy_d
            if np.abs(residual).max(initial=0.0) < 1e-13:
                break
            j = self._jacobian(xy)
            det = j[..., 0, 0] * j[..., 1, 1] - j[..., 0, 1] * j[..., 1, 0]
            det = np.where(np.abs(det) < 1e-12, 1e-12, det)
            dx = (j[..., 1, 1] * residual[..., 0] - j[..., 0, 1] * residual[..., 1]) / det
            dy = (-j[..., 1, 0] * residual[..., 0] + j[..., 0, 0] * residual[..., 1]) / det
            xy = xy - np.stack([dx, dy], axis=-1)
        error = np.linalg.norm(self.distort(xy) - xy_d, axis=-1)
        valid = (error < 1e-9 * np.maximum(1, np.linalg.norm(xy_d, axis=-1))) \
            & (np.linalg.norm(xy, axis=-1) < self._limit)
        return xy, valid

    def _jacobian(self, xy: np.ndarray) -> np.ndarray:
        k1, k2, p1, p2, k3 = self.coeffs
        x, y = xy[..., 0], xy[..., 1]
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        d_radial = k1 + r2 * (2 * k2 + 3 * k3 * r2)  # d radial / d r2
        j = np.empty(xy.shape[:-1] + (2, 2))
        j[..., 0, 0] = radial + 2 * x * x * d_radial + 2 * p1 * y + 6 * p2 * x
        j[..., 0, 1] = 2 * x * y * d_radial + 2 * p1 * x + 2 * p2 * y
        j[..., 1, 0] = 2 * x * y * d_radial + 2 * p1 * x + 2 * p2 * y
        j[..., 1, 1] = radial + 2 * y * y * d_radial + 6 * p1 * y + 2 * p2 * x
        return j

    # -- camera points and pixels ------------------------------------------------------------------------------
    def project(self, points_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Camera-space points (N, 3), OpenCV axes -> (pixels (N, 2), valid (N,)). A point is invalid when
        it lies at or behind the camera plane (fisheye: past 90 degrees) or beyond the range where the
        distortion is monotonic (there it would fold back into the image)."""
        p = np.asarray(points_cam, dtype=float)
        z = p[..., 2]
        front = z > 1e-12
        safe_z = np.where(front, z, 1.0)
        xy = p[..., :2] / safe_z[..., None]
        valid = front & (np.linalg.norm(xy, axis=-1) < self._norm_limit())
        return self.to_pixels(self.distort(xy)), valid

    def _norm_limit(self) -> float:
        if self.model == "fisheye":
            return math.tan(min(self._limit, math.pi / 2 - 1e-6))
        return self._limit

    def to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """Normalised coordinates -> pixels (float32 input stays float32: the constants are Python floats)."""
        fx, s, cx, fy, cy = (float(v) for v in self.K[[0, 0, 0, 1, 1], [0, 1, 2, 1, 2]])
        return np.stack([fx * xy[..., 0] + s * xy[..., 1] + cx, fy * xy[..., 1] + cy], axis=-1)

    def from_pixels(self, uv: np.ndarray) -> np.ndarray:
        fx, s, cx, fy, cy = (float(v) for v in self.K[[0, 0, 0, 1, 1], [0, 1, 2, 1, 2]])
        uv = np.asarray(uv)
        uv = uv if uv.dtype in (np.float32, np.float64) else uv.astype(float)
        y = (uv[..., 1] - cy) / fy
        x = (uv[..., 0] - cx - s * y) / fx
        return np.stack([x, y], axis=-1)

    def rays(self, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixels (N, 2) -> (unit rays in camera space (N, 3), valid)."""
        xy, valid = self.undistort(self.from_pixels(uv))
        rays = np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], axis=-1)
        return rays / np.linalg.norm(rays, axis=-1, keepdims=True), valid

    def pixel_centres(self) -> np.ndarray:
        w, h = self.size
        cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
        return np.stack([cols, rows], axis=-1)


def _theta_d(theta, k):
    t2 = theta * theta
    return theta * (1 + t2 * (k[0] + t2 * (k[1] + t2 * (k[2] + t2 * k[3]))))


def _theta_d_slope(theta, k):
    t2 = theta * theta
    return 1 + t2 * (3 * k[0] + t2 * (5 * k[1] + t2 * (7 * k[2] + t2 * 9 * k[3])))


def _monotonic_limit(model: str, coeffs) -> float:
    """Where the radial mapping stops increasing: the normalised radius (brown_conrady) or the angle
    in radians (fisheye) beyond which points are not projected (inf when it never turns)."""
    if model == "pinhole" or not any(coeffs):
        return math.inf  # (an equidistant fisheye, theta_d = theta, is monotonic)
    if model == "fisheye":
        theta = np.linspace(0, math.pi / 2, 20001)[1:]
        bad = np.flatnonzero(_theta_d_slope(theta, coeffs) <= 0)
        return float(theta[bad[0]]) if bad.size else math.inf
    k1, _, _, _, k3 = coeffs
    k2 = coeffs[1]
    r = np.linspace(0, 20, 200001)[1:]
    r2 = r * r
    slope = 1 + 3 * k1 * r2 + 5 * k2 * r2 * r2 + 7 * k3 * r2 * r2 * r2  # d(r * radial)/dr
    bad = np.flatnonzero(slope <= 0)
    return float(r[bad[0]]) if bad.size else math.inf


# -- the pinhole render behind a distorted image ------------------------------------------------------------------
@dataclass(frozen=True)
class View:
    """A distorted output image made from a pinhole render: ``source`` is the render's lens (pinhole),
    ``lens`` the output's. ``rows``/``cols`` give, for every output pixel, the render pixel it takes
    (nearest; -1 where no render pixel maps there); ``map_x``/``map_y`` the exact position (project's
    convention) for bilinear resampling."""

    lens: Lens
    source: Lens
    map_x: np.ndarray
    map_y: np.ndarray
    rows: np.ndarray
    cols: np.ndarray

    @property
    def identity(self) -> bool:
        return not self.lens.distorted

    def nearest(self, image: np.ndarray, fill=0) -> np.ndarray:
        """Ids, masks, depth, normals: every output pixel copies one render pixel (never blended)."""
        if self.identity:
            return image
        flat = image.reshape(-1, *image.shape[2:])
        out = np.take(flat, self._flat, axis=0).reshape(*self.rows.shape, *image.shape[2:])
        if self._outside.any():
            out[self._outside] = fill
        return out

    @cached_property
    def _flat(self) -> np.ndarray:
        return (self.rows.clip(0) * self.source.size[0] + self.cols.clip(0)).ravel()

    @cached_property
    def _outside(self) -> np.ndarray:
        return self.rows < 0

    @cached_property
    def start(self) -> np.ndarray:
        """Each output pixel's exact position in the render, (H, W, 2), float32 (flow's precision)."""
        return np.stack([self.map_x, self.map_y], axis=-1).astype(np.float32)

    @cached_property
    def centres(self) -> np.ndarray:
        """The output's pixel centres, (H, W, 2), float32."""
        return self.lens.pixel_centres().astype(np.float32)

    def linear(self, image: np.ndarray) -> np.ndarray:
        """Colour: bilinear resampling between the four render pixels around each position, with OpenCV's
        remap where OpenCV is installed (farm workers, the command), else with numpy (inside Blender)."""
        if self.identity:
            return image
        try:
            import cv2
        except ImportError:
            return self.linear_numpy(image)
        return cv2.remap(image, *self._cv_maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    @cached_property
    def _cv_maps(self):
        import cv2

        return cv2.convertMaps((self.map_x - 0.5).astype(np.float32), (self.map_y - 0.5).astype(np.float32),
                               cv2.CV_16SC2)

    def linear_numpy(self, image: np.ndarray) -> np.ndarray:
        index, weights = self._bilinear
        flat = image.reshape(-1, *image.shape[2:]).astype(np.float32)
        out = sum(np.take(flat, i, axis=0) * (w if image.ndim == 2 else w[:, None]) for i, w in zip(index, weights))
        out = out.reshape(*self.rows.shape, *image.shape[2:])
        if np.issubdtype(image.dtype, np.integer):
            out = np.clip(np.rint(out), np.iinfo(image.dtype).min, np.iinfo(image.dtype).max)
        return out.astype(image.dtype)

    @cached_property
    def _bilinear(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Flat indices and weights of the four neighbours of every output pixel (edges clamped)."""
        w, h = self.source.size
        x, y = (self.map_x - 0.5).ravel(), (self.map_y - 0.5).ravel()  # pixel centres on integers
        x0, y0 = np.floor(x), np.floor(y)
        fx, fy = (x - x0).astype(np.float32), (y - y0).astype(np.float32)
        cols = [np.clip(x0 + d, 0, w - 1).astype(np.int64) for d in (0, 1)]
        rows = [np.clip(y0 + d, 0, h - 1).astype(np.int64) for d in (0, 1)]
        index = [rows[a] * w + cols[b] for a in (0, 1) for b in (0, 1)]
        weights = [(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx]
        return index, weights

    def covered(self) -> np.ndarray:
        """Render pixels (H_r, W_r) whose centre lands inside the output image (the output's footprint in
        the render; truncation is measured against it)."""
        w, h = self.source.size
        if self.identity:
            return np.ones((h, w), dtype=bool)
        centres = self.source.pixel_centres().reshape(-1, 2)
        rays = np.concatenate([self.source.from_pixels(centres), np.ones((len(centres), 1))], axis=1)
        uv, valid = self.lens.project(rays)
        W, H = self.lens.size
        inside = valid & (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
        return inside.reshape(h, w)


def render_view(lens: Lens, max_pixels: float = MAX_RENDER_PIXELS) -> View:
    """The pinhole render (square pixels, the output's focal length in the centre, shrunk if it would
    exceed ``max_pixels`` times the output's pixel count) that covers every pixel of ``lens``'s image,
    and the maps from it onto the distorted image."""
    W, H = lens.size
    if not lens.distorted:
        return View(lens, lens, np.empty(0), np.empty(0), np.empty(0, int), np.empty(0, int))
    centres = lens.pixel_centres()
    xy, valid = lens.undistort(lens.from_pixels(centres))
    border = np.concatenate([lens.from_pixels(np.stack(np.meshgrid(e, np.linspace(0, H, 65)), -1).reshape(-1, 2))
                             for e in ([0.0], [float(W)])] +
                            [lens.from_pixels(np.stack(np.meshgrid(np.linspace(0, W, 65), e), -1).reshape(-1, 2))
                             for e in ([0.0], [float(H)])])
    bxy, bvalid = lens.undistort(border)
    reach = np.concatenate([xy[valid], bxy[bvalid]])
    if not valid.all():
        bad = (~valid).sum()
        raise LensError(f"{bad} of {valid.size} pixels of this {lens.model} lens see no point a pinhole render can "
                        f"show (beyond 90 degrees or where the distortion folds); lower the field of view or the "
                        f"distortion coefficients")
    lo, hi = reach.min(axis=0), reach.max(axis=0)
    f = float(lens.K[0, 0])
    aspect = float(lens.K[1, 1] / lens.K[0, 0])
    span = (hi - lo) * [f, f * aspect]
    scale = min(1.0, math.sqrt(max_pixels * W * H / max(span[0] * span[1], 1.0)))
    fr = f * scale
    Wr, Hr = int(math.ceil(span[0] * scale)) + 2, int(math.ceil(span[1] * scale)) + 2
    cx, cy = -lo[0] * fr + 1.0, -lo[1] * fr * aspect + 1.0
    source = Lens(np.array([[fr, 0, cx], [0, fr * aspect, cy], [0, 0, 1]]), (Wr, Hr))
    uv = source.to_pixels(xy)
    cols, rows = np.floor(uv[..., 0]).astype(np.int64), np.floor(uv[..., 1]).astype(np.int64)
    outside = (cols < 0) | (cols >= Wr) | (rows < 0) | (rows >= Hr)
    rows[outside], cols[outside] = -1, -1
    return View(lens, source, uv[..., 0], uv[..., 1], rows, cols)


def stereo_disparity(fx: float, baseline: float, depth: np.ndarray) -> np.ndarray:
    """Disparity of a rectified pair's left view in pixels: d = fx * baseline / z (0 where nothing is hit).
    The point seen at the centre of left pixel (c, r) is seen in the right view at x = c + 0.5 - d."""
    with np.errstate(divide="ignore"):
        d = fx * baseline / np.asarray(depth, dtype=np.float64)
    return np.where(np.isfinite(d), d, 0.0).astype(np.float32)
