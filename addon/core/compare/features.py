"""Image features for comparing sets: a fixed hand-crafted set by default (nothing to download), or a
pretrained network the user has as an ONNX file.

A feature extractor is any object with ``name``, ``description`` and ``__call__(images) -> (n, d) array``.
Distances between sets are comparable only when they were measured on the same features.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from PIL import Image
from skimage.feature import hog

from .images import CompareError


class FeatureExtractor(Protocol):
    name: str
    description: str

    def __call__(self, images: list[Image.Image]) -> np.ndarray: ...


class HandcraftedFeatures:
    """224 numbers per image, in three groups, each scaled to unit length so that none dominates:
    colour (a 72-bin HSV histogram: 8 hues x 3 saturations x 3 values), shape (a 144-number histogram of
    oriented gradients, scikit-image's: 9 orientations in each of 4x4 cells over the image at 64x64) and tone (8
    numbers: mean and spread of luminance, its 5th/50th/95th percentiles, saturation, colourfulness and edge
    density). Fixed: no training, no download, the same numbers on every machine."""

    name = "handcrafted"
    description = ("HSV colour histogram (72), histogram of oriented gradients at 64x64 (144) and tone statistics "
                   "(8), each group scaled to unit length; fixed, no download")

    def __call__(self, images: list[Image.Image]) -> np.ndarray:
        return np.stack([self.one(np.asarray(im.convert("RGB"))) for im in images]) if images else np.zeros((0, 224))

    def one(self, rgb: np.ndarray) -> np.ndarray:
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
        colour = cv2.calcHist([hsv], [0, 1, 2], None, [8, 3, 3], [0, 180, 0, 256, 0, 256]).ravel()
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        shape = hog(cv2.resize(grey, (64, 64), interpolation=cv2.INTER_AREA), orientations=9, pixels_per_cell=(16, 16),
                    cells_per_block=(1, 1), feature_vector=True)
        lum = grey.astype(np.float32) / 255.0
        r, g, b = (rgb[..., i].astype(np.float32) / 255.0 for i in range(3))
        rg, yb = r - g, 0.5 * (r + g) - b
        colourfulness = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
        edges = cv2.Canny(grey, 100, 200).astype(bool).mean()
        tone = np.array([lum.mean(), lum.std(), *np.percentile(lum, [5, 50, 95]), hsv[..., 1].mean() / 255.0,
                         colourfulness, edges], dtype=np.float64)
        return np.concatenate([_unit(colour), _unit(shape), _unit(tone)])


class OnnxFeatures:
    """A pretrained network the user has as an ONNX file (nothing is downloaded), run on the CPU with
    onnxruntime. Images are resized to the model's input size (224 when it does not say), scaled to 0..1 and
    normalised with ``mean`` and ``std`` (ImageNet's by default), fed as NCHW float32; the first output (or
    ``output``) is the feature, averaged over its spatial axes when it has them."""

    def __init__(self, path: str | Path, *, output: str | None = None, size: int | None = None,
                 mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), batch: int = 16):
        try:
            import onnxruntime as ort
        except ImportError:
            raise CompareError("ONNX features need onnxruntime: pip install 'synthfarm[analysis]'") from None
        self.path = Path(path)
        if not self.path.is_file():
            raise CompareError(f"ONNX model {self.path} does not exist; export one (see the README: Comparing "
                               "datasets) or use the default hand-crafted features")
        try:
            self.session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own untyped errors for a broken file
            raise CompareError(f"{self.path} is not a model onnxruntime can run: {err}") from None
        model_input = self.session.get_inputs()[0]
        self.input = model_input.name
        shape = model_input.shape
        self.size = size or next((int(s) for s in shape[2:] if isinstance(s, int)), 224)
        self.output = output or self.session.get_outputs()[0].name
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.batch = batch
        self.name = f"onnx:{self.path.name}"
        self.description = (f"pretrained network {self.path.name} (ONNX, output {self.output!r}, input "
                            f"{self.size}x{self.size})")

    def __call__(self, images: list[Image.Image]) -> np.ndarray:
        out = []
        for start in range(0, len(images), self.batch):
            chunk = [np.asarray(im.convert("RGB").resize((self.size, self.size), Image.Resampling.BILINEAR),
                                dtype=np.float32) / 255.0 for im in images[start:start + self.batch]]
            tensor = ((np.stack(chunk) - self.mean) / self.std).transpose(0, 3, 1, 2).astype(np.float32)
            result = self.session.run([self.output], {self.input: tensor})[0]
            out.append(result.reshape(result.shape[0], result.shape[1], -1).mean(axis=2) if result.ndim > 2
                       else result)
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, 0))


def extractor(spec: str) -> FeatureExtractor:
    """``handcrafted`` (the default) or ``onnx:PATH``."""
    if spec in ("", "handcrafted"):
        return HandcraftedFeatures()
    if spec.startswith("onnx:"):
        return OnnxFeatures(spec.removeprefix("onnx:"))
    raise CompareError(f"features {spec!r}: use 'handcrafted' or 'onnx:PATH/TO/MODEL.onnx'")


def _unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float64)
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 0 else vector
