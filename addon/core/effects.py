"""Camera effects and backplates on the rendered RGB image, after the render; never on masks or labels.

Pure numpy (JPEG through Pillow, which the add-on ships), so it runs the same in Blender, on a worker
and in a notebook. Images are uint8 (H, W, 3) in display space, as the PNG is written; effects work in
float32 in [0, 1] and round once at the end. The order is a camera's: light (gain, white balance),
lens (vignetting, chromatic shift, blur, motion blur), sensor (shot noise, read noise), then JPEG.
"""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from PIL import Image

# The effects in the order they apply (each a field of the image_effects randomizer).
EFFECTS = ("gain", "white_balance", "vignetting", "chromatic_shift", "blur", "motion_blur", "photons", "noise",
           "jpeg_quality")


def gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(math.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    line = np.exp(-0.5 * (x / max(sigma, 1e-6)) ** 2)
    kernel = np.outer(line, line)
    return kernel / kernel.sum()


def line_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A motion-blur kernel: a line ``length`` px long at ``angle_deg`` (0 = horizontal), anti-aliased."""
    radius = max(1, int(math.ceil(length / 2)))
    size = 2 * radius + 1
    kernel = np.zeros((size, size), np.float32)
    a = math.radians(angle_deg)
    for t in np.linspace(-length / 2, length / 2, max(2, int(math.ceil(length * 4)))):
        x, y = radius + t * math.cos(a), radius - t * math.sin(a)
        x0, y0 = int(math.floor(x)), int(math.floor(y))
        fx, fy = x - x0, y - y0
        for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            if 0 <= x0 + dx < size and 0 <= y0 + dy < size:
                kernel[y0 + dy, x0 + dx] += w
    return kernel / kernel.sum()


def convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Each channel of a float (H, W, C) image convolved with a small centred kernel; edges reflect."""
    ry, rx = kernel.shape[0] // 2, kernel.shape[1] // 2
    padded = np.pad(image, ((ry, ry), (rx, rx), (0, 0)), mode="reflect")
    shape = padded.shape[:2]
    spectrum = np.fft.rfft2(padded, axes=(0, 1)) * np.fft.rfft2(kernel, s=shape)[..., None]
    out = np.fft.irfft2(spectrum, s=shape, axes=(0, 1))
    return out[2 * ry:2 * ry + image.shape[0], 2 * rx:2 * rx + image.shape[1]].astype(np.float32)


def _radius(h: int, w: int) -> np.ndarray:
    """Distance of each pixel centre from the image centre, 1 at the corners."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.hypot(x + 0.5 - w / 2, y + 0.5 - h / 2) / math.hypot(w / 2, h / 2)


def vignette(image: np.ndarray, strength: float) -> np.ndarray:
    h, w = image.shape[:2]
    return image * (1.0 - strength * _radius(h, w) ** 2)[..., None]


def _scaled(channel: np.ndarray, factor: float) -> np.ndarray:
    """A channel magnified by ``factor`` about the image centre (bilinear, edges clamped)."""
    h, w = channel.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    sx = np.clip((x + 0.5 - w / 2) / factor + w / 2 - 0.5, 0, w - 1)
    sy = np.clip((y + 0.5 - h / 2) / factor + h / 2 - 0.5, 0, h - 1)
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = sx - x0, sy - y0
    top = channel[y0, x0] * (1 - fx) + channel[y0, x1] * fx
    bottom = channel[y1, x0] * (1 - fx) + channel[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def chromatic_shift(image: np.ndarray, pixels: float) -> np.ndarray:
    """Lateral chromatic aberration: red magnified and blue shrunk so that each is ``pixels`` off green at
    the corners."""
    h, w = image.shape[:2]
    factor = pixels / math.hypot(w / 2, h / 2)
    out = image.copy()
    out[..., 0] = _scaled(image[..., 0], 1 + factor)
    out[..., 2] = _scaled(image[..., 2], 1 - factor)
    return out


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        return np.asarray(decoded.convert("RGB"))


def apply_effects(image: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
    """The image (uint8 H x W x 3) with the effects in ``params`` ({effect: drawn value}; absent: off);
    the noise is drawn from ``rng``."""
    if not params:
        return image
    x = image.astype(np.float32) / 255.0
    if params.get("gain") is not None:
        x = x * params["gain"]
    if params.get("white_balance") is not None:
        x = x * np.asarray(params["white_balance"], np.float32)
    if params.get("vignetting"):
        x = vignette(x, params["vignetting"])
    if params.get("chromatic_shift"):
        x = chromatic_shift(x, params["chromatic_shift"])
    if params.get("blur"):
        x = convolve(x, gaussian_kernel(params["blur"]))
    if params.get("motion_blur"):
        x = convolve(x, line_kernel(params["motion_blur"], params.get("motion_angle", 0.0)))
    if params.get("photons") is not None:
        photons = params["photons"]
        x = rng.poisson(np.clip(x, 0, 1) * photons).astype(np.float32) / photons
    if params.get("noise"):
        x = x + rng.normal(0.0, params["noise"], x.shape).astype(np.float32)
    out = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    if params.get("jpeg_quality") is not None:
        out = jpeg(out, params["jpeg_quality"])
    return out


# -- backplates -------------------------------------------------------------------------------------------------
def load_image(path: Path) -> np.ndarray:
    """An image file as uint8 RGB."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def cover_crop(image: np.ndarray, size: tuple[int, int], zoom: float, where: tuple[float, float],
               flip: bool) -> np.ndarray:
    """``image`` scaled to cover ``size`` (W, H) times ``zoom``, cropped at ``where`` ((0, 0): top left,
    (1, 1): bottom right of the room left), mirrored if ``flip``."""
    width, height = size
    h, w = image.shape[:2]
    scale = max(width / w, height / h) * zoom
    sw, sh = max(width, round(w * scale)), max(height, round(h * scale))
    resized = np.asarray(Image.fromarray(image).resize((sw, sh), Image.Resampling.BILINEAR))
    x0, y0 = round(where[0] * (sw - width)), round(where[1] * (sh - height))
    crop = resized[y0:y0 + height, x0:x0 + width]
    return crop[:, ::-1] if flip else crop


def over(rgba: np.ndarray, background: np.ndarray) -> np.ndarray:
    """A rendered RGBA image (straight alpha, as Blender writes PNG) over an RGB background; uint8 RGB."""
    if rgba.shape[-1] == 3:
        return rgba
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    out = rgba[..., :3].astype(np.float32) * alpha + background.astype(np.float32) * (1.0 - alpha)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# -- measures (benchmarks and tests) -----------------------------------------------------------------------------
def clipped_fraction(image: np.ndarray) -> float:
    """Fraction of pixels with a clipped channel: at 255 (blown) or at 0 (crushed)."""
    rgb = image[..., :3]
    return float(np.mean(np.any((rgb >= 255) | (rgb <= 0), axis=-1)))


def noise_sigma(image: np.ndarray) -> float:
    """Robust estimate of the noise standard deviation of an 8-bit image (in 0-255 units): the median
    absolute Laplacian-like difference of neighbouring pixels (Immerkær's method)."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = convolve(image[..., :3].astype(np.float32), kernel)[1:-1, 1:-1]
    return float(math.sqrt(math.pi / 2) * np.mean(np.abs(response)) / 6.0)  # averaged over the channels
