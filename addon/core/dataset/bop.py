"""BOP format (the 6D pose benchmark): one scene per job and sensor, ``<out>/train_pbr/<scene>/`` with
``rgb/``, ``depth/`` (16-bit PNG, depth in mm = value x depth_scale), ``mask/`` (amodal) and
``mask_visib/`` per object, and ``scene_gt.json``, ``scene_camera.json``, ``scene_gt_info.json``.
Object ids are class ids; translations are in millimetres, as BOP expects. No object models are
written (``models/`` needs meshes that a recipe's assets may not allow redistributing).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ..exr import read_exr
from ..groundtruth import rle_decode
from .classmap import ClassMap
from .frames import Filters, frames, link_or_copy
from .native import atomic_write_json, write_png

DEPTH_SCALE = 0.1  # one depth unit is 0.1 mm: 16 bits reach 6.5 m


def _box(bbox) -> list[int]:
    if not bbox:
        return [-1, -1, -1, -1]
    x, y, w, h = bbox
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    return [x0, y0, int(np.ceil(x + w)) - x0, int(np.ceil(y + h)) - y0]


def export(root: Path, out: Path, class_map: ClassMap, filters: Filters) -> dict:
    scenes: dict[str, dict] = defaultdict(lambda: {"gt": {}, "camera": {}, "info": {}})
    counts = {"images": 0, "objects": 0}
    for frame in frames(root, class_map, filters):
        job, index, sensor = frame.stem.split("-", 2)
        scene_name = f"{int(job):06d}" if sensor == "cam" else f"{int(job):06d}_{sensor}"
        folder, im_id = out / "train_pbr" / scene_name, int(index)
        link_or_copy(frame.path("image"), folder / "rgb" / f"{im_id:06d}.png")
        depth_path = frame.path("depth")
        if depth_path.is_file():
            depth = read_exr(depth_path)["Z"].astype(np.float64) * 1000.0 / DEPTH_SCALE
            depth[~np.isfinite(depth)] = 0
            (folder / "depth").mkdir(parents=True, exist_ok=True)
            write_png(folder / "depth" / f"{im_id:06d}.png", np.clip(np.rint(depth), 0, 65535).astype(np.uint16))
        w2c = frame.world_to_cam
        scene = scenes[str(folder)]
        scene["camera"][str(im_id)] = {"cam_K": frame.K.ravel().tolist(), "depth_scale": DEPTH_SCALE,
                                       "cam_R_w2c": w2c[:3, :3].ravel().tolist(),
                                       "cam_t_w2c": (w2c[:3, 3] * 1000).tolist()}
        gts, infos = [], []
        for gt_id, (obj, entry) in enumerate(frame.objects):
            gts.append({"cam_R_m2c": np.array(obj["pose"]["R"]).ravel().tolist(),
                        "cam_t_m2c": (np.array(obj["pose"]["t"]) * 1000).tolist(), "obj_id": entry.id})
            infos.append({"bbox_obj": _box(obj.get("amodal_bbox")), "bbox_visib": _box(obj["bbox"]),
                          "px_count_all": obj.get("amodal_pixels", 0), "px_count_valid": obj.get("amodal_pixels", 0),
                          "px_count_visib": obj["visible_pixels"], "visib_fract": obj.get("visibility", 0.0)})
            for kind, rle in (("mask", obj.get("amodal_segmentation")), ("mask_visib", obj["segmentation"])):
                mask = rle_decode(rle) if rle else np.zeros((frame.height, frame.width), bool)
                (folder / kind).mkdir(parents=True, exist_ok=True)
                write_png(folder / kind / f"{im_id:06d}_{gt_id:06d}.png", mask.astype(np.uint8) * 255)
        scene["gt"][str(im_id)], scene["info"][str(im_id)] = gts, infos
        counts["images"] += 1
        counts["objects"] += len(gts)
    for folder, scene in scenes.items():
        atomic_write_json(Path(folder) / "scene_gt.json", scene["gt"])
        atomic_write_json(Path(folder) / "scene_camera.json", scene["camera"])
        atomic_write_json(Path(folder) / "scene_gt_info.json", scene["info"])
    return counts
