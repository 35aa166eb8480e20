"""Pascal VOC: ``Annotations/*.xml``, ``JPEGImages/*.jpg``, ``ImageSets/Main/<split>.txt`` and
``labelmap.txt`` (the label list datumaro and CVAT read: ``name:r,g,b::``, VOC's palette colours).

Images are JPEG (quality 95), as VOC tools expect (some build the path as ``JPEGImages/<id>.jpg``).
VOC boxes are 1-based and inclusive: a box [x, y, w, h] becomes xmin = x + 1, xmax = x + w.
"""
from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

from PIL import Image

from .classmap import ClassMap
from .frames import TRUNCATED, Filters, frames
from .native import atomic_write_bytes, atomic_write_text
from .splits import SPLITS

JPEG_QUALITY = 95


def palette_colour(index: int) -> tuple[int, int, int]:
    """VOC's colour of label ``index`` (0 is the background): the bits of the index spread over r, g, b."""
    r = g = b = 0
    for shift in range(7, -1, -1):
        r |= ((index >> 0) & 1) << shift
        g |= ((index >> 1) & 1) << shift
        b |= ((index >> 2) & 1) << shift
        index >>= 3
    return r, g, b


def _sub(parent, tag, text=None):
    node = ET.SubElement(parent, tag)
    if text is not None:
        node.text = str(text)
    return node


def _jpeg(png: Path) -> bytes:
    with Image.open(png) as image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def export(root: Path, out: Path, class_map: ClassMap, filters: Filters, splits: dict[str, str]) -> dict:
    lists: dict[str, list[str]] = {split: [] for split in SPLITS}
    objects = 0
    for folder in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for frame in frames(root, class_map, filters):
        atomic_write_bytes(out / "JPEGImages" / f"{frame.stem}.jpg", _jpeg(frame.path("image")))
        doc = ET.Element("annotation")
        _sub(doc, "folder", "JPEGImages")
        _sub(doc, "filename", f"{frame.stem}.jpg")
        _sub(_sub(doc, "source"), "database", "synthfarm")
        size = _sub(doc, "size")
        for tag, value in (("width", frame.width), ("height", frame.height), ("depth", 3)):
            _sub(size, tag, value)
        _sub(doc, "segmented", 0)
        for obj, entry in frame.objects:
            node = _sub(doc, "object")
            _sub(node, "name", entry.name)
            _sub(node, "pose", "Unspecified")
            _sub(node, "truncated", int(obj.get("truncation", 0.0) > TRUNCATED))
            _sub(node, "occluded", int(obj.get("visibility", 1.0) < 0.9))
            _sub(node, "difficult", 0)
            x, y, w, h = obj["bbox"]
            box = _sub(node, "bndbox")
            for tag, value in (("xmin", x + 1), ("ymin", y + 1), ("xmax", x + w), ("ymax", y + h)):
                _sub(box, tag, value)
            objects += 1
        ET.indent(doc)
        atomic_write_bytes(out / "Annotations" / f"{frame.stem}.xml",
                           ET.tostring(doc, encoding="utf-8", xml_declaration=True))
        lists[splits[frame.stem]].append(frame.stem)
    for split, stems in lists.items():
        if stems or split == "train":
            atomic_write_text(out / "ImageSets" / "Main" / f"{split}.txt", "".join(f"{s}\n" for s in stems))
    classes = sorted(class_map.classes, key=lambda c: c.id)
    if any(":" in c.name for c in classes):
        raise ValueError("voc: a class name holds ':', which labelmap.txt cannot hold; rename it in the class map")
    lines = ["# label:color_rgb:parts:actions", "background:0,0,0::"]
    lines += [f"{c.name}:{','.join(map(str, palette_colour(i)))}::" for i, c in enumerate(classes, start=1)]
    atomic_write_text(out / "labelmap.txt", "\n".join(lines) + "\n")
    return {"images": sum(map(len, lists.values())), "objects": objects,
            **{split: len(stems) for split, stems in lists.items() if stems}}
