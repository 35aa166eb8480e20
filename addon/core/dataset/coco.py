"""COCO instances: one JSON for the whole dataset; images are referenced by file name in ``images/``.

Segmentation is the visible mask as compressed RLE (exact) or, with ``polygons=True``, its outer
contours; ``area`` is always the visible pixel count from the mask; ``bbox`` is the visible box.
Objects with keypoints get ``keypoints`` [x, y, v, ...] and ``num_keypoints``; their category lists the
keypoint names (the class map's, else every name seen for that class, sorted) and its ``skeleton``.
"""
from __future__ import annotations

from pathlib import Path

from ..groundtruth import rle_decode
from .classmap import ClassMap
from .frames import Filters, frames, mask_polygons
from .native import atomic_write_json


def export(root: Path, out: Path, class_map: ClassMap, filters: Filters, polygons: bool = False) -> dict:
    document = coco_document(root, class_map, filters, polygons)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "instances.json", document)
    return {"images": len(document["images"]), "annotations": len(document["annotations"])}


def coco_document(root: Path, class_map: ClassMap, filters: Filters, polygons: bool = False) -> dict:
    """The COCO instances document of a dataset (images carry ``synthfarm_stem``)."""
    images, annotations = [], []
    seen: dict[int, set[str]] = {}  # keypoint names per category
    for image_id, frame in enumerate(frames(root, class_map, filters), start=1):
        images.append({"id": image_id, "file_name": frame.path("image").name, "width": frame.width,
                       "height": frame.height, "synthfarm_stem": frame.stem})
        for obj, entry in frame.objects:
            segmentation = obj["segmentation"]
            if polygons:
                segmentation = mask_polygons(rle_decode(segmentation)) or segmentation
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": entry.id,
                                "bbox": obj["bbox"], "area": obj["visible_pixels"], "iscrowd": 0,
                                "segmentation": segmentation,
                                "attributes": {"visibility": obj.get("visibility"),
                                               "truncation": obj.get("truncation"),
                                               "instance_id": obj["instance_id"], "name": obj["name"]}})
            if obj.get("keypoints"):
                annotations[-1]["_keypoints"] = {k["name"]: k for k in obj["keypoints"]}
                seen.setdefault(entry.id, set()).update(annotations[-1]["_keypoints"])
    categories = [{"id": c.id, "name": c.name, "supercategory": c.supercategory or c.name}
                  for c in sorted(class_map.classes, key=lambda c: c.id)]
    for category, entry in zip(categories, sorted(class_map.classes, key=lambda c: c.id)):
        names = list(entry.keypoints) or sorted(seen.get(entry.id, ()))
        if names:
            category.update(keypoints=names, skeleton=[list(pair) for pair in entry.skeleton])
    names_of = {c["id"]: c.get("keypoints", []) for c in categories}
    for ann in annotations:
        points = ann.pop("_keypoints", None)
        if points is not None:
            flat = [points.get(n, {"x": 0, "y": 0, "v": 0}) for n in names_of[ann["category_id"]]]
            ann["keypoints"] = [round(v, 2) if i % 3 < 2 else v for p in flat for i, v in
                                enumerate((p["x"], p["y"], p["v"]))]
            ann["num_keypoints"] = sum(p["v"] > 0 for p in flat)
    return {"info": {"description": f"synthfarm dataset {root.name}", "version": "1.0"},
            "licenses": [], "images": images, "annotations": annotations, "categories": categories}
