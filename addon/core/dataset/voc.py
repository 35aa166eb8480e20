"""Pascal VOC: ``Annotations/*.xml``, ``JPEGImages/`` (the PNGs, linked), ``ImageSets/Main/default.txt``.

VOC boxes are 1-based and inclusive: a box [x, y, w, h] becomes xmin = x + 1, xmax = x + w.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from .classmap import ClassMap
from .frames import TRUNCATED, Filters, frames, link_or_copy
from .native import atomic_write_bytes, atomic_write_text


def _sub(parent, tag, text=None):
    node = ET.SubElement(parent, tag)
    if text is not None:
        node.text = str(text)
    return node


def export(root: Path, out: Path, class_map: ClassMap, filters: Filters) -> dict:
    stems, objects = [], 0
    for frame in frames(root, class_map, filters):
        image = frame.path("image")
        link_or_copy(image, out / "JPEGImages" / image.name)
        doc = ET.Element("annotation")
        _sub(doc, "folder", "JPEGImages")
        _sub(doc, "filename", image.name)
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
        target = out / "Annotations" / f"{frame.stem}.xml"
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, ET.tostring(doc, encoding="utf-8", xml_declaration=True))
        stems.append(frame.stem)
    sets = out / "ImageSets" / "Main"
    sets.mkdir(parents=True, exist_ok=True)
    atomic_write_text(sets / "default.txt", "".join(f"{s}\n" for s in stems))
    atomic_write_text(out / "labels.txt", "".join(f"{c.name}\n" for c in sorted(class_map.classes, key=lambda c: c.id)))
    return {"images": len(stems), "objects": objects}
