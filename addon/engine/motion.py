"""Sequences as Blender animation: the randomizers' per-frame updates become keyframes, so that the scene
frame plays them together with the base .blend's own animation, and Cycles sees the motion (motion blur,
the Vector pass for optical flow).

Job frame k is scene frame ``frame_start + k``. Keys are linear with linear extrapolation, so the motion
one frame before the first and after the last (which motion blur and flow look at) continues the path;
a one-frame job is keyed at frames 0 and 1 so that its motion blur shows the motion through frame 0.
"""
from __future__ import annotations

import logging

import bpy
import numpy as np

log = logging.getLogger(__name__)

CHANNELS = ("location", "rotation_quaternion", "scale")


class Keyed:
    """The per-frame updates of one job, baked into keyframes; :meth:`release` takes them off again."""

    def __init__(self, scene, updates, frames: int, frame_rate: float):
        self.scene = scene
        self.first = scene.frame_start
        self.saved_rate = (scene.render.fps, scene.render.fps_base)
        set_frame_rate(scene, frame_rate)
        self.objects: list = []
        self.modes: dict[str, str] = {}
        if updates:
            self._bake(updates, frames)

    def _bake(self, updates, frames: int) -> None:
        candidates = list(self.scene.objects)  # a child that only follows its parent keeps its own channels
        poses: dict[str, list] = {o.name: [] for o in candidates}
        for k in range(max(frames, 2)):  # a single frame with motion blur still needs its motion
            for update in updates:
                update(k)
            bpy.context.view_layer.update()
            for obj in candidates:
                m = obj.matrix_basis
                poses[obj.name].append((tuple(m.to_translation()), tuple(m.to_quaternion()), tuple(m.to_scale())))
        for obj in candidates:
            track = poses[obj.name]
            if all(np.allclose(np.concatenate(p), np.concatenate(track[0])) for p in track[1:]):
                continue
            if obj.animation_data is not None and obj.animation_data.action is not None:
                log.warning("%s has its own animation; the randomizers' motion is not keyed on it", obj.name)
                continue
            self._key(obj, track)

    def _key(self, obj, track) -> None:
        self.modes[obj.name] = obj.rotation_mode
        obj.rotation_mode = "QUATERNION"
        previous = None
        for k, (location, quaternion, scale) in enumerate(track):
            q = np.array(quaternion)
            if previous is not None and np.dot(q, previous) < 0:
                q = -q  # the same rotation; keeps the keys from interpolating through the long way round
            previous = q
            obj.location, obj.rotation_quaternion, obj.scale = location, q.tolist(), scale
            for channel in CHANNELS:
                obj.keyframe_insert(channel, frame=self.first + k)
        for fcurve in _fcurves(obj):
            fcurve.extrapolation = "LINEAR"
            for point in fcurve.keyframe_points:
                point.interpolation = "LINEAR"
        self.objects.append(obj)

    def frame(self, k: int) -> None:
        """Show job frame ``k``: the keyed motion and the base scene's own animation."""
        self.scene.frame_set(self.first + k)

    def release(self) -> None:
        for obj in self.objects:
            try:
                obj.animation_data_clear()
                obj.rotation_mode = self.modes.get(obj.name, obj.rotation_mode)
            except ReferenceError:
                pass
        self.objects.clear()
        self.scene.render.fps, self.scene.render.fps_base = self.saved_rate


def set_frame_rate(scene, rate: float) -> None:
    """Blender keeps the rate as an integer and a divisor: fps / fps_base = rate."""
    fps = max(1, round(rate))
    scene.render.fps, scene.render.fps_base = fps, fps / rate


def _fcurves(obj):
    """The F-curves of an object's action (Blender 5 keeps them in layered action channel bags)."""
    action = obj.animation_data.action if obj.animation_data else None
    if action is None:
        return []
    if hasattr(action, "fcurves"):
        return list(action.fcurves)
    curves = []
    for layer in action.layers:
        for strip in layer.strips:
            for bag in strip.channelbags:
                curves += list(bag.fcurves)
    return curves
