"""Exports for tracking: MOT Challenge sequences and COCO-style video annotations.

A sequence (a video) is one job seen by one sensor: its frames in order. A track is one object of that
job: its instance id, which stays the same in every frame of the job.

``mot``: ``mot/<job>-<sensor>/`` with ``seqinfo.ini``, ``img1/000001.png`` (frames numbered from 1) and
``gt/gt.txt``, one line per kept object and frame: ``frame, id, left, top, width, height, 1, class,
visibility`` (MOT17's ground-truth columns; the box is the whole object, occluded parts included, as
in MOT17, and may reach past the image border). MOT's coordinates are MATLAB's, 1-based: the top-left
pixel is (1, 1), so ``left = x + 1`` for our box x. ``mot/seqmap.txt`` lists the sequences.

``coco-video``: ``coco-video/instances.json``, COCO instances plus ``videos`` (id, name, width,
height, length, frame_rate), ``images`` with ``video_id`` and ``frame_id`` (from 0) and the frame's
camera (K, distortion), ``annotations`` with ``video_id`` and ``track_id``, and ``tracks`` (id, video_id,
category_id): the layout of TAO and of mmtracking's CocoVID.
"""
from __future__ import annotations

import json
from pathlib import Path

from .classmap import ClassMap
from .coco import coco_document
from .frames import Filters, frames, link_or_copy
from .native import atomic_write_json, atomic_write_text

DEFAULT_FRAME_RATE = 24


def _sequence(annotation: dict) -> str:
    return f"{int(annotation['job']):010d}-{annotation['sensor']}"


def export_mot(root: Path, out: Path, class_map: ClassMap, filters: Filters) -> dict:
    sequences: dict[str, list] = {}
    for frame in frames(root, class_map, filters):
        sequences.setdefault(_sequence(frame.annotation), []).append(frame)
    lines_total = 0
    for name, seq in sorted(sequences.items()):
        seq.sort(key=lambda f: int(f.annotation["frame"]))
        folder = out / name
        lines = []
        for number, frame in enumerate(seq, start=1):
            image = frame.path("image")
            link_or_copy(image, folder / "img1" / f"{number:06d}{image.suffix}")
            for obj, entry in frame.objects:
                x, y, w, h = obj.get("amodal_bbox_unclipped") or obj["bbox"]
                lines.append(f"{number},{obj['instance_id']},{x + 1:.2f},{y + 1:.2f},{w:.2f},{h:.2f},1,{entry.id},"
                             f"{obj.get('visibility', 1.0):.4f}\n")
        (folder / "gt").mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "gt" / "gt.txt", "".join(lines))
        first = seq[0]
        atomic_write_text(folder / "seqinfo.ini", "[Sequence]\n" + "".join(f"{k}={v}\n" for k, v in (
            ("name", name), ("imDir", "img1"), ("frameRate", _frame_rate(first.annotation)), ("seqLength", len(seq)),
            ("imWidth", first.width), ("imHeight", first.height), ("imExt", first.path("image").suffix))))
        lines_total += len(lines)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "seqmap.txt", "name\n" + "".join(f"{n}\n" for n in sorted(sequences)))
    return {"sequences": len(sequences), "boxes": lines_total}


def _frame_rate(annotation: dict):
    rate = annotation.get("frame_rate", DEFAULT_FRAME_RATE)
    return int(rate) if float(rate).is_integer() else rate


def export_coco_video(root: Path, out: Path, class_map: ClassMap, filters: Filters, polygons: bool = False) -> dict:
    document = coco_document(root, class_map, filters, polygons)
    videos: dict[str, dict] = {}
    image_video: dict[int, int] = {}
    for image in document["images"]:
        ann = json.loads((root / "annotations" / f"{image['synthfarm_stem']}-ann.json").read_text())
        name = _sequence(ann)
        video = videos.setdefault(name, {"id": len(videos) + 1, "name": name, "width": image["width"],
                                         "height": image["height"], "length": 0,
                                         "frame_rate": _frame_rate(ann)})
        video["length"] += 1
        camera = ann.get("camera", {})
        image.update(video_id=video["id"], frame_id=int(ann["frame"]), camera={"K": camera.get("K"),
                                                                                  "distortion": camera.get("lens")})
        image_video[image["id"]] = video["id"]
    tracks: dict[tuple[int, int], dict] = {}
    for ann in document["annotations"]:
        video_id = image_video[ann["image_id"]]
        key = (video_id, ann["attributes"]["instance_id"])
        track = tracks.setdefault(key, {"id": len(tracks) + 1, "video_id": video_id,
                                        "category_id": ann["category_id"], "instance_id": key[1]})
        ann.update(video_id=video_id, track_id=track["id"], instance_id=track["id"])
    document["videos"] = sorted(videos.values(), key=lambda v: v["id"])
    document["tracks"] = list(tracks.values())
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "instances.json", document)
    return {"videos": len(videos), "images": len(document["images"]), "tracks": len(tracks)}
