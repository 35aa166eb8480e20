"""BOP format (the 6D pose benchmark): one scene per job and sensor, ``<out>/train_pbr/<scene>/`` with
``rgb/``, ``depth/`` (16-bit PNG, depth in mm = value x depth_scale), ``mask/`` (amodal) and
``mask_visib/`` per object, ``scene_gt.json``, ``scene_camera.json``, ``scene_gt_info.json``; and
``<out>/models/``: one PLY per distinct model (mesh and scale: instances of one class jittered to other
sizes are other models) in millimetres, in the frame ``cam_R_m2c``/``cam_t_m2c`` place, with
``models_info.json`` (diameter, min and size per axis; no symmetries) and ``models_synthfarm.json``
(which class and model key each obj_id is).

scene_gt_info follows the BOP toolkit's definitions (scripts/calc_gt_info.py): px_count_all counts the
whole silhouette on a canvas one image beyond each border, visib_fract = px_count_visib / px_count_all,
bbox_obj is the box of that whole silhouette (it may reach outside the image), boxes are [x, y, w, h]
of pixel indices with w = x_max - x_min, as BOP's calc_2d_bbox computes them.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..exr import read_depth
from ..groundtruth import rle_decode
from .classmap import ClassMap
from .frames import Filters, frames, link_or_copy
from .models import diameter, read_model, write_model
from .native import atomic_write_json, write_png

log = logging.getLogger(__name__)
DEPTH_SCALE = 0.1  # one depth unit is 0.1 mm: 16 bits reach 6.5 m


def bop_box(bbox) -> list[int]:
    """A COCO-style [x, y, w, h] box of pixels (w = pixel count) as BOP writes it (w = x_max - x_min)."""
    if not bbox:
        return [-1, -1, -1, -1]
    x, y, w, h = (int(round(v)) for v in bbox)
    return [x, y, w - 1, h - 1]


def _model_ids(kept, root: Path) -> dict[str, int]:
    """obj_id of every model key: 1.. in the order of (class id, key), so ids are stable for a dataset. Without
    every model's mesh (a dataset from before models were written, or one whose models/ was not copied),
    obj_id falls back to the class id, for every object, and a warning says so."""
    keys = sorted({(entry.id, obj["model"]) for frame in kept for obj, entry in frame.objects if obj.get("model")})
    missing = [key for _, key in keys if not (root / "models" / f"{key}.ply").is_file()]
    if missing or not keys:
        if keys:
            log.warning("bop: %d of %d models are missing from %s/models (e.g. %s.ply): obj_id is the class id "
                        "and no models/ is written", len(missing), len(keys), root, missing[0])
        return {}
    return {key: i for i, (_, key) in enumerate(keys, start=1)}


def export(root: Path, out: Path, class_map: ClassMap, filters: Filters) -> dict:
    kept = list(frames(root, class_map, filters))
    model_ids = _model_ids(kept, root)
    scenes: dict[str, dict] = defaultdict(lambda: {"gt": {}, "camera": {}, "info": {}})
    counts = {"images": 0, "objects": 0, "models": len(model_ids)}
    for frame in kept:
        job, index, sensor = frame.stem.split("-", 2)
        scene_name = f"{int(job):06d}" if sensor == "cam" else f"{int(job):06d}_{sensor}"
        folder, im_id = out / "train_pbr" / scene_name, int(index)
        link_or_copy(frame.path("image"), folder / "rgb" / f"{im_id:06d}.png")
        depth_path = frame.path("depth")
        depth = None
        if depth_path.is_file():
            depth = read_depth(depth_path).astype(np.float64)
            scaled = depth * 1000.0 / DEPTH_SCALE
            scaled[~np.isfinite(scaled)] = 0
            (folder / "depth").mkdir(parents=True, exist_ok=True)
            write_png(folder / "depth" / f"{im_id:06d}.png", np.clip(np.rint(scaled), 0, 65535).astype(np.uint16))
        w2c = frame.world_to_cam
        scene = scenes[str(folder)]
        scene["camera"][str(im_id)] = {"cam_K": frame.K.ravel().tolist(), "depth_scale": DEPTH_SCALE,
                                       "cam_R_w2c": w2c[:3, :3].ravel().tolist(),
                                       "cam_t_w2c": (w2c[:3, 3] * 1000).tolist()}
        gts, infos = [], []
        for gt_id, (obj, entry) in enumerate(frame.objects):
            gts.append({"cam_R_m2c": np.array(obj["pose"]["R"]).ravel().tolist(),
                        "cam_t_m2c": (np.array(obj["pose"]["t"]) * 1000).tolist(),
                        "obj_id": model_ids[obj["model"]] if model_ids else entry.id})
            amodal = rle_decode(obj["amodal_segmentation"]) if obj.get("amodal_segmentation") else \
                np.zeros((frame.height, frame.width), bool)
            everything = obj.get("amodal_pixels_all") or obj.get("amodal_pixels", 0)  # datasets from before: in-image
            valid = int((amodal & np.isfinite(depth)).sum()) if depth is not None else int(amodal.sum())
            infos.append({"bbox_obj": bop_box(obj.get("amodal_bbox_all") or obj.get("amodal_bbox")),
                          "bbox_visib": bop_box(obj["bbox"]), "px_count_all": int(everything),
                          "px_count_valid": valid, "px_count_visib": obj["visible_pixels"],
                          "visib_fract": float(obj["visible_pixels"] / everything) if everything else 0.0})
            for kind, mask in (("mask", amodal), ("mask_visib", rle_decode(obj["segmentation"]))):
                (folder / kind).mkdir(parents=True, exist_ok=True)
                write_png(folder / kind / f"{im_id:06d}_{gt_id:06d}.png", mask.astype(np.uint8) * 255)
        scene["gt"][str(im_id)], scene["info"][str(im_id)] = gts, infos
        counts["images"] += 1
        counts["objects"] += len(gts)
    for folder, scene in scenes.items():
        atomic_write_json(Path(folder) / "scene_gt.json", scene["gt"])
        atomic_write_json(Path(folder) / "scene_camera.json", scene["camera"])
        atomic_write_json(Path(folder) / "scene_gt_info.json", scene["info"])
    _write_models(root, out, model_ids, kept)
    return counts


def _write_models(root: Path, out: Path, model_ids: dict[str, int], kept) -> None:
    """models/obj_<id>.ply in millimetres and models_info.json, from the dataset's models/<key>.ply."""
    if not model_ids:
        return
    classes = {obj["model"]: entry.name for frame in kept for obj, entry in frame.objects if obj.get("model")}
    info, origin = {}, {}
    for key, obj_id in sorted(model_ids.items(), key=lambda item: item[1]):
        vertices, faces = read_model(root / "models" / f"{key}.ply")
        vertices = vertices * 1000.0  # metres -> millimetres
        write_model(out / "models" / f"obj_{obj_id:06d}.ply", vertices, faces)
        lo, hi = vertices.min(axis=0), vertices.max(axis=0)
        info[str(obj_id)] = {"diameter": diameter(vertices), "min_x": float(lo[0]), "min_y": float(lo[1]),
                             "min_z": float(lo[2]), "size_x": float(hi[0] - lo[0]), "size_y": float(hi[1] - lo[1]),
                             "size_z": float(hi[2] - lo[2])}
        origin[str(obj_id)] = {"class": classes[key], "model": key}
    atomic_write_json(out / "models" / "models_info.json", info)
    atomic_write_json(out / "models" / "models_synthfarm.json", origin)
