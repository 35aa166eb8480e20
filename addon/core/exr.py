"""Reading and writing OpenEXR files with the OpenEXR Python bindings (pure numpy; no Blender).

A dataset's depth is one float32 channel named ``Y`` and its normals are half-float ``R``, ``G``, ``B``
(= x, y, z): the names OpenCV (4.x, with OPENCV_IO_ENABLE_OPENEXR=1), imageio's FreeImage plugin and EXR
viewers read as a grey and a colour image. Datasets written before used ``Z`` and ``X, Y, Z``; the
readers below take both.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenEXR


def write_exr(path: str | Path, channels: dict[str, np.ndarray], half: bool = False) -> None:
    """A single-part scanline EXR, one float channel per entry (e.g. {"Z": depth}), ZIP-compressed
    per scanline (lossless, fast to write)."""
    dtype = np.float16 if half else np.float32
    data = {name: np.ascontiguousarray(array, dtype=dtype) for name, array in channels.items()}
    header = {"compression": OpenEXR.ZIPS_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, data) as exr:
        exr.write(str(path))


def read_exr(path: str | Path) -> dict[str, np.ndarray]:
    """Every channel of every part, by full channel name (row 0 is the top of the image)."""
    out: dict[str, np.ndarray] = {}
    with OpenEXR.File(str(path), separate_channels=True) as exr:
        for part in exr.parts:
            for name, channel in part.channels.items():
                out[name] = channel.pixels
    return out


DEPTH_CHANNEL = "Y"
NORMAL_CHANNELS = ("R", "G", "B")


def write_depth(path: str | Path, depth: np.ndarray) -> None:
    write_exr(path, {DEPTH_CHANNEL: depth})


def write_normals(path: str | Path, normals: np.ndarray) -> None:
    write_exr(path, {name: normals[..., i] for i, name in enumerate(NORMAL_CHANNELS)}, half=True)


def read_depth(path: str | Path) -> np.ndarray:
    channels = read_exr(path)
    return channels[DEPTH_CHANNEL] if DEPTH_CHANNEL in channels and len(channels) == 1 else channels["Z"]


def read_normals(path: str | Path) -> np.ndarray:
    channels = read_exr(path)
    names = NORMAL_CHANNELS if NORMAL_CHANNELS[0] in channels else ("X", "Y", "Z")
    return np.stack([channels[name] for name in names], axis=-1)
