"""A job's frames as an MP4 for a quick look (PyAV: FFmpeg's libraries, shipped in its wheel)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image


class VideoError(RuntimeError):
    """A recipe asks for video and this Python cannot encode it."""


def require_encoder() -> None:
    """Fail before rendering when ``video`` is asked for and PyAV is missing (the Blender extension leaves
    it out: render videos with the command or the farm, or install PyAV into Blender's Python)."""
    import importlib.util

    if importlib.util.find_spec("av") is None:
        raise VideoError("sensors[].outputs: video needs PyAV (pip install av), which this Python lacks; render "
                         "with the synthfarm command or a farm worker, or leave video out of the outputs")


def encode_mp4(images: list[Path], path: Path, frame_rate: float) -> None:
    """H.264 (yuv420p, so every player shows it) at ``frame_rate``; odd sizes are padded by one pixel."""
    import av

    rate = Fraction(frame_rate).limit_denominator(1001)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = None
        for image_path in images:
            with Image.open(image_path) as image:
                rgb = np.asarray(image.convert("RGB"))
            if stream is None:
                height, width = rgb.shape[:2]
                stream = container.add_stream("libx264", rate=rate)
                stream.width, stream.height = width + width % 2, height + height % 2
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": "20"}
            padded = np.zeros((stream.height, stream.width, 3), np.uint8)
            padded[:rgb.shape[0], :rgb.shape[1]] = rgb
            for packet in stream.encode(av.VideoFrame.from_ndarray(padded, format="rgb24")):
                container.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
