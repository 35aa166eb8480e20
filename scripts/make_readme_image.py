"""Render what the README's quick-start command renders and save it as a small picture for the README.

    python scripts/make_readme_image.py            # writes docs/toybox.jpg

The same recipe, job count and seed as ``synthfarm render assets/recipes/toybox.yaml --jobs 4``; the four
images are tiled 2 x 2 at half size (about 100 KB as JPEG).
"""
from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("make_readme_image")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "toybox.jpg")
    parser.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import synthfarm

    with tempfile.TemporaryDirectory() as tmp:
        synthfarm.render(ROOT / "assets" / "recipes" / "toybox.yaml", jobs=args.jobs, out=tmp, seed=0, progress=False)
        tiles = [np.asarray(Image.open(p).convert("RGB").reduce(2)) for p in sorted(Path(tmp, "images").glob("*.png"))]
    rows = [np.concatenate(tiles[i:i + 2], axis=1) for i in range(0, len(tiles) - len(tiles) % 2, 2)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(args.out, quality=85, optimize=True)
    log.info("wrote %s (%d bytes)", args.out, args.out.stat().st_size)


if __name__ == "__main__":
    main()
