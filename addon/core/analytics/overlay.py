"""Frames with their labels drawn: masks, visible and amodal boxes, 3D boxes and keypoints, and grids of them.

Labels are drawn after the image is scaled to the tile size, so text and lines stay readable on small
renders. Each class has one colour. A mask is outlined and lightly filled, except the mask of an object that
holds others (a box with toys in it): that one is only outlined, so what lies inside keeps its colours.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..groundtruth import rle_decode
from .plots import COLOURS

# the 12 edges of a 3D box, for corners in Blender's bound_box order (groundtruth.box_corners)
BOX_EDGES = ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7))


@dataclass(frozen=True)
class Layers:
    masks: bool = True
    boxes: bool = True
    labels: bool = True
    amodal: bool = False  # amodal boxes, dashed
    box3d: bool = False  # 3D boxes, wireframe
    keypoints: bool = True  # filled: visible; ring: in the image but hidden


DEFAULT_LAYERS = Layers()  # masks, boxes, class tags, keypoints
ALL_LAYERS = Layers(amodal=True, box3d=True)


def class_colour(name: str, classes: list[str]) -> tuple[int, int, int]:
    hexa = COLOURS[classes.index(name) % len(COLOURS)] if name in classes else COLOURS[-2]
    return tuple(int(hexa[i:i + 2], 16) for i in (1, 3, 5))


def font(size: int):
    return ImageFont.load_default(size=size)


def annotated_frame(root: Path, stem: str, *, width: int | None = None, layers: Layers = DEFAULT_LAYERS,
                    classes: list[str] | None = None) -> Image.Image:
    """A frame's image (scaled to ``width`` pixels, if given) with its labels drawn."""
    root = Path(root)
    with Image.open(root / "images" / f"{stem}.png") as im:
        image = im.convert("RGB")
    ann = json.loads((root / "annotations" / f"{stem}-ann.json").read_text(encoding="utf-8"))
    objects = [o for o in ann["objects"] if o.get("visible_pixels", 0) > 0]
    classes = classes or sorted({o["class"] for o in objects})
    scale = (width or image.width) / image.width
    size = (round(image.width * scale), round(image.height * scale))
    pixels = np.array(image.resize(size, Image.Resampling.LANCZOS) if scale != 1 else image)
    if layers.masks:
        holders = containers(objects)
        for obj in objects:
            if obj.get("segmentation"):
                draw_mask(pixels, rle_decode(obj["segmentation"]), class_colour(obj["class"], classes),
                          fill=obj not in holders)
    frame = Image.fromarray(pixels)
    pen = ImageDraw.Draw(frame)
    text = font(max(11, min(16, round(size[0] / 24))))
    for obj in objects:
        colour = class_colour(obj["class"], classes)
        if layers.box3d and (obj.get("box3d") or {}).get("image"):
            corners = [(x * scale, y * scale) for x, y in obj["box3d"]["image"]]
            for a, b in BOX_EDGES:
                pen.line([corners[a], corners[b]], fill=colour, width=1)
        if layers.amodal and obj.get("amodal_bbox"):
            dashed_rectangle(pen, [v * scale for v in obj["amodal_bbox"]], colour)
        if layers.boxes:
            x, y, w, h = (v * scale for v in obj["bbox"])
            pen.rectangle([x, y, x + w - 1, y + h - 1], outline=colour, width=2)
        if layers.keypoints:
            for point in obj.get("keypoints") or []:
                if point["v"] > 0:
                    cx, cy, r = point["x"] * scale, point["y"] * scale, 3
                    pen.ellipse([cx - r, cy - r, cx + r, cy + r], outline=(255, 255, 255), width=1,
                                fill=colour if point["v"] == 2 else None)
    if layers.labels and layers.boxes:
        for obj in objects:
            x, y, _, _ = (v * scale for v in obj["bbox"])
            label(pen, (x, y), obj["class"], class_colour(obj["class"], classes), text)
    return frame


def containers(objects: list[dict]) -> list[dict]:
    """The objects whose visible box holds the box centre of a smaller object (a box with toys in it)."""
    def centre(o):
        x, y, w, h = o["bbox"]
        return x + w / 2, y + h / 2

    def area(o):
        return o["bbox"][2] * o["bbox"][3]

    out = []
    for outer in objects:
        x, y, w, h = outer["bbox"]
        if any(o is not outer and area(o) < area(outer) and x <= centre(o)[0] <= x + w and y <= centre(o)[1] <= y + h
               for o in objects):
            out.append(outer)
    return out


def draw_mask(pixels: np.ndarray, mask: np.ndarray, colour, *, fill: bool, alpha: float = 0.35) -> None:
    """Tint ``mask`` (scaled to ``pixels``) with ``colour`` when ``fill``, and outline it (its pixels with a
    4-neighbour outside it). Numpy and Pillow only: the add-on's Preview draws with this inside Blender."""
    height, width = pixels.shape[:2]
    scaled = np.asarray(Image.fromarray(mask).resize((width, height), Image.Resampling.NEAREST))
    if fill:
        pixels[scaled] = ((1 - alpha) * pixels[scaled] + alpha * np.array(colour)).astype(np.uint8)
    padded = np.pad(scaled, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    pixels[scaled & ~inner] = colour


def dashed_rectangle(pen: ImageDraw.ImageDraw, box, colour, dash: float = 5.0) -> None:
    x, y, w, h = box
    corners = [(x, y), (x + w, y), (x + w, y + h), (x, y + h), (x, y)]
    for (x0, y0), (x1, y1) in zip(corners, corners[1:]):
        length = max(abs(x1 - x0), abs(y1 - y0))
        steps = max(1, int(length // dash))
        for i in range(0, steps, 2):
            a, b = i / steps, min(1.0, (i + 1) / steps)
            pen.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a), (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)],
                     fill=colour, width=1)


def label(pen: ImageDraw.ImageDraw, at: tuple[float, float], text: str, colour, face) -> None:
    """``text`` on a filled tag of its class colour above ``at`` (inside the image when there is no room)."""
    left, top, right, bottom = pen.textbbox((0, 0), text, font=face)
    w, h = right - left + 6, bottom - top + 4
    x, y = at[0], at[1] - h if at[1] - h >= 0 else at[1]
    pen.rectangle([x, y, x + w, y + h], fill=colour)
    ink = (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)
    pen.text((x + 3 - left, y + 2 - top), text, fill=ink, font=face)


def preview_grid(root: Path, stems: list[str], *, columns: int = 4, width: int = 320, layers: Layers = DEFAULT_LAYERS,
                 captions: bool = True) -> Image.Image:
    """Frames side by side, each with its labels drawn and, below it, its stem."""
    root = Path(root)
    classes = sorted({o["class"] for stem in stems
                      for o in json.loads((root / "annotations" / f"{stem}-ann.json").read_text())["objects"]})
    tiles = [annotated_frame(root, stem, width=width, layers=layers, classes=classes) for stem in stems]
    if not tiles:
        return Image.new("RGB", (width, width // 2), (40, 40, 40))
    face = font(13)
    caption = 20 if captions else 0
    tile_h = max(t.height for t in tiles) + caption
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * (width + 4), rows * (tile_h + 4)), (30, 30, 30))
    pen = ImageDraw.Draw(sheet)
    for i, (stem, tile) in enumerate(zip(stems, tiles)):
        x, y = (i % columns) * (width + 4), (i // columns) * (tile_h + 4)
        sheet.paste(tile, (x, y))
        if captions:
            pen.text((x + 4, y + tile.height + 3), stem, fill=(235, 235, 235), font=face)
    return sheet


def pick_stems(stems: list[str], count: int) -> list[str]:
    """``count`` stems spread evenly over the list."""
    if len(stems) <= count:
        return list(stems)
    return [stems[round(i * (len(stems) - 1) / (count - 1))] for i in range(count)] if count > 1 else stems[:1]
