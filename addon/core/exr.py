"""Reading and writing OpenEXR files with the OpenEXR Python bindings (pure numpy; no Blender)."""
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
