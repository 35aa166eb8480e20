"""Cameras that look: a camera pose is kept only when the objects it must see are in view and visible
enough, judged from geometry (no render).

For each object: its triangles are projected through the camera's lens and rasterised (the silhouette
inside the image, and the whole silhouette on a canvas reaching past it: ``in_frame`` is their ratio);
rays are cast through a sample of the silhouette's pixels, and the share that hits the object first is
its ``visible`` fraction (what the dataset calls visibility); ``pixels`` estimates its visible pixels.
Silhouettes are rasterised on the image scaled down to CHECK_SIZE pixels a side (fractions hardly change;
pixel counts are scaled back).
"""
from __future__ import annotations

import copy
import logging

import bpy
import numpy as np
from mathutils import Vector
from mathutils.bvhtree import BVHTree

from ..core.groundtruth import blender_to_opencv_camera
from ..core.lens import Lens
from ..core.raster import rasterize
from . import sensors
from .placement import Meshes

log = logging.getLogger(__name__)

RAYS = 32  # rays per object and check
CHECK_SIZE = 160  # the silhouettes are rasterised with the image scaled to at most this many pixels a side


def looked_pose(rnd, made, stream, ctx, cams, draw, apply):
    """Draw a pose with ``draw()`` and ``apply`` it until every camera sees what ``rnd.must_see`` names
    (at most ``rnd.max_draws`` draws; then the best draw is kept). Returns the chosen draw; the rejected
    draws and the outcome are logged in the stream."""
    if not getattr(rnd, "must_see", None):
        pose = draw()
        apply(pose)
        return pose
    targets = [o for g in rnd.must_see for o in made.get(g, []) if not o.hide_render]
    rays = SceneRays(ctx["meshes"])
    rejected, best = [], None
    for attempt in range(rnd.max_draws):
        pose = draw()
        apply(pose)
        report = [see(cam, targets, ctx["meshes"], rays, rnd, seed=attempt) for cam in cams]
        passed = all(r["passed"] for r in report)
        if passed:
            break
        score = float(np.mean([r["score"] for r in report]))
        rejected.append({"draw": attempt, "cameras": report})
        if best is None or score > best[0]:
            best = (score, pose, copy.deepcopy(stream.log))
    else:
        _, pose, log_then = best
        stream.log.clear()
        stream.log.update(log_then)
        apply(pose)
        log.warning("%s: no pose in %d draws shows %s as asked; keeping the best one", rnd.name, rnd.max_draws,
                    ", ".join(rnd.must_see))
    stream.record("rejected_draws", rejected)
    stream.record("satisfied", len(rejected) < rnd.max_draws)
    return pose


class SceneRays:
    """One BVH tree of every rendered mesh (the scene stands still while a camera is drawn), telling which
    object a ray hits first."""

    def __init__(self, meshes: Meshes):
        bpy.context.view_layer.update()
        vertices, polygons, owners, offset = [], [], [], 0
        for obj in bpy.context.scene.objects:
            if obj.type != "MESH" or obj.hide_render:
                continue
            local = meshes.vertices(obj)
            tris = meshes.triangles(obj)
            m = np.array(obj.matrix_world)
            vertices.append(local @ m[:3, :3].T + m[:3, 3])
            polygons.append(tris + offset)
            owners += [obj.name] * len(tris)
            offset += len(local)
        self.owners = owners
        self.tree = BVHTree.FromPolygons(np.concatenate(vertices).tolist() if vertices else [],
                                         np.concatenate(polygons).tolist() if polygons else [], all_triangles=True)

    def first(self, origin: Vector, direction: Vector) -> str | None:
        _, _, index, _ = self.tree.ray_cast(origin, direction)
        return None if index is None else self.owners[index]


def see(cam, targets, meshes: Meshes, rays: SceneRays, rnd, seed: int = 0) -> dict:
    """Whether ``cam`` sees ``targets`` as ``rnd`` asks, with each object's measures."""
    resolution = tuple(cam[sensors.LENS_PROP]["resolution"])
    full = sensors.view_lens(cam, resolution)
    scale = min(1.0, CHECK_SIZE / max(resolution))
    lens = Lens(full.K * [[scale], [scale], [1.0]], (max(1, round(resolution[0] * scale)),
                                                     max(1, round(resolution[1] * scale))), full.model, full.coeffs)
    bpy.context.view_layer.update()
    cam_to_world, world_to_cam = blender_to_opencv_camera(np.array(cam.matrix_world))
    rng = np.random.default_rng(seed)
    objects = {}
    for obj in targets:
        objects[obj.name] = measure(obj, lens, world_to_cam, cam_to_world, meshes, rays, rng, cam.data.clip_start)
        objects[obj.name]["pixels"] = int(round(objects[obj.name]["pixels"] / scale ** 2))  # at full resolution
    ok = [m["in_frame"] >= rnd.min_in_frame and m["visible"] >= rnd.min_visible and m["pixels"] >= rnd.min_pixels
          for m in objects.values()]
    passed = (all(ok) if rnd.see_all else any(ok)) if ok else True
    score = float(np.mean([min(m["in_frame"], m["visible"]) for m in objects.values()])) if objects else 1.0
    return {"camera": cam.name, "passed": passed, "score": score, "objects": objects}


def measure(obj, lens, world_to_cam, cam_to_world, meshes: Meshes, rays: SceneRays, rng, near: float) -> dict:
    tris, _ = meshes.local(obj)
    m = np.array(obj.matrix_world)
    world = tris.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3]
    cam = world @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    pixels, valid = lens.project(cam)
    keep = (valid & (cam[:, 2] > near)).reshape(-1, 3).all(axis=1)
    px = pixels.reshape(-1, 3, 2)[keep]
    width, height = lens.size
    none = {"in_frame": 0.0, "visible": 0.0, "pixels": 0}
    if not len(px):
        return none
    inside = rasterize(px, width, height)
    count = int(inside.sum())
    if not count:
        return none
    lo, hi = px.reshape(-1, 2).min(axis=0), px.reshape(-1, 2).max(axis=0)
    ox, oy = int(np.floor(max(lo[0], -2 * width))), int(np.floor(max(lo[1], -2 * height)))
    ex, ey = int(np.ceil(min(hi[0], 3 * width))), int(np.ceil(min(hi[1], 3 * height)))
    total = int(rasterize(px, max(ex - ox, 1), max(ey - oy, 1), origin=(ox, oy)).sum()) if (
        ox < 0 or oy < 0 or ex > width or ey > height) else count
    rows, cols = np.nonzero(inside)
    pick = rng.choice(len(rows), size=min(RAYS, len(rows)), replace=False)
    centres = np.stack([cols[pick] + 0.5, rows[pick] + 0.5], axis=-1)
    origin = Vector(cam_to_world[:3, 3])
    hits = 0
    directions, ok = lens.rays(centres)
    for ray in (directions[ok] @ cam_to_world[:3, :3].T):
        hits += rays.first(origin, Vector(ray)) == obj.name
    visible = hits / len(pick)
    return {"in_frame": count / max(total, count), "visible": visible, "pixels": int(round(count * visible))}
