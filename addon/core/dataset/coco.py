"""COCO instances, one file per split: ``annotations/instances_<split>.json`` with its images linked in
``images/<split>/`` (the layout of COCO itself, which datumaro and most loaders detect).

Segmentation is the visible mask as compressed RLE (exact) or, with ``polygons=True``, polygons through
the pixel corners of every part of the mask (pycocotools fills them back to the mask exactly); an object
whose mask has a hole, which a COCO polygon set cannot hold, keeps its RLE. ``area`` is always the
visible pixel count; ``bbox`` the visible box. Categories with keypoints list their names and skeleton;
every annotation of a dataset with keypoint categories carries ``keypoints`` (3 x K values, K the largest
keypoint count; zeros where a point is absent) and ``num_keypoints``, so pycocotools' keypoint evaluation
runs on mixed datasets (set its ``params.kpt_oks_sigmas`` to K values).
"""
from __future__ import annotations

from pathlib import Path

from ..groundtruth import rle_decode
from .classmap import ClassMap
from .frames import Filters, frames, keypoint_names, link_or_copy
from .native import atomic_write_json
from .polygons import flat, trace
from .splits import SPLITS


def segmentation(obj: dict, polygons: bool):
    if not polygons:
        return obj["segmentation"]
    outline = trace(rle_decode(obj["segmentation"]))
    if outline.holes or not outline.parts:
        return obj["segmentation"]
    return [flat(part) for part in outline.parts]


def coco_document(root: Path, class_map: ClassMap, filters: Filters, polygons: bool = False) -> dict:
    """The COCO instances document of a dataset, every frame (images carry ``synthfarm_stem``)."""
    kept = list(frames(root, class_map, filters))
    names = keypoint_names(class_map, kept)
    width = max((len(n) for n in names.values()), default=0)
    classes = sorted(class_map.classes, key=lambda c: c.id)
    categories = [{"id": c.id, "name": c.name, "supercategory": c.supercategory or c.name} for c in classes]
    for category, entry in zip(categories, classes):
        if names.get(entry.id):
            category.update(keypoints=names[entry.id], skeleton=[list(pair) for pair in entry.skeleton])
    images, annotations = [], []
    for image_id, frame in enumerate(kept, start=1):
        images.append({"id": image_id, "file_name": frame.path("image").name, "width": frame.width,
                       "height": frame.height, "synthfarm_stem": frame.stem})
        for obj, entry in frame.objects:
            ann = {"id": len(annotations) + 1, "image_id": image_id, "category_id": entry.id, "bbox": obj["bbox"],
                   "area": obj["visible_pixels"], "iscrowd": 0, "segmentation": segmentation(obj, polygons),
                   "attributes": {"visibility": obj.get("visibility"), "truncation": obj.get("truncation"),
                                  "instance_id": obj["instance_id"], "name": obj["name"]}}
            if names:
                ann.update(_keypoints(obj, names.get(entry.id, []), width))
            annotations.append(ann)
    return {"info": {"description": f"synthfarm dataset {root.name}", "version": "1.0"},
            "licenses": [], "images": images, "annotations": annotations, "categories": categories}


def export(root: Path, out: Path, class_map: ClassMap, filters: Filters, splits: dict[str, str],
           polygons: bool = False) -> dict:
    document = coco_document(root, class_map, filters, polygons)
    split_of = {image["id"]: splits[image["synthfarm_stem"]] for image in document["images"]}
    for split in SPLITS:
        images = [image for image in document["images"] if split_of[image["id"]] == split]
        if not images and split != "train":
            continue
        for image in images:
            source = root / "images" / image["file_name"]
            link_or_copy(source, out / "images" / split / image["file_name"])
        atomic_write_json(out / "annotations" / f"instances_{split}.json", {
            **document, "info": {**document["info"], "description": f"{document['info']['description']}, {split}"},
            "images": images, "annotations": [a for a in document["annotations"] if split_of[a["image_id"]] == split]})
    counts = {"images": len(document["images"]), "annotations": len(document["annotations"])}
    if polygons:
        counts["rle_with_holes"] = sum(isinstance(a["segmentation"], dict) for a in document["annotations"])
    return counts


def _keypoints(obj: dict, names: list[str], width: int) -> dict:
    """COCO keypoints [x, y, v, ...] in the category's order, ``width`` points; zeros where a point is absent."""
    points = {k["name"]: k for k in obj.get("keypoints") or []}
    flat_points = []
    for name in names:
        p = points.get(name, {"x": 0, "y": 0, "v": 0})
        flat_points += [round(p["x"], 2), round(p["y"], 2), p["v"]] if p["v"] else [0, 0, 0]
    flat_points += [0, 0, 0] * (width - len(names))
    return {"keypoints": flat_points, "num_keypoints": sum(v > 0 for v in flat_points[2::3])}
