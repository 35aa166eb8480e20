"""Small generated image sets for comparison tests: shapes of random colours on random backgrounds."""
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def make_set(folder: Path, count: int, *, seed: int, brightness: float = 1.0, size=(96, 72)) -> Path:
    """``count`` PNGs in ``folder``; ``brightness`` scales every pixel (0.5: half as bright)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        image = Image.new("RGB", size, tuple(int(c) for c in rng.integers(60, 200, 3)))
        pen = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(2, 6))):
            x0, y0 = rng.integers(0, size[0] - 10), rng.integers(0, size[1] - 10)
            x1, y1 = x0 + rng.integers(8, 40), y0 + rng.integers(8, 30)
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            (pen.ellipse if rng.random() < 0.5 else pen.rectangle)([x0, y0, x1, y1], fill=colour)
        pixels = np.clip(np.asarray(image, dtype=np.float32) * brightness, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i:03d}.png")
    return folder
