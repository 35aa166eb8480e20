"""Randomizers that move things during a sequence: object motion, camera paths (dolly and spline) and
hand-held shake. Each draws its motion once per job and returns a frame update (see randomizers.py);
time is frame / frame_rate seconds."""
from __future__ import annotations

import math

import bpy
import numpy as np
from mathutils import Euler, Matrix, Vector

from .randomizers import _cameras, _targets, point_at, resolve_point


def _object_motion(rnd, made, stream, ctx):
    rate = ctx["frame_rate"]
    starts = []
    for obj in _targets(rnd, made):
        velocity = Vector(stream.draw("velocity", rnd.velocity, obj.name))
        spin = [math.radians(a) for a in stream.draw("spin", rnd.spin, obj.name)]
        starts.append((obj, obj.matrix_world.copy(), velocity, spin))

    def at_frame(k: int):
        t = k / rate
        for obj, start, velocity, spin in starts:
            turn = Euler([a * t for a in spin], "XYZ").to_matrix().to_4x4()
            location, rotation, scale = start.decompose()
            obj.matrix_world = Matrix.LocRotScale(location + velocity * t, turn.to_quaternion() @ rotation, scale)

    return at_frame


def catmull_rom(points: list[np.ndarray], u: float) -> np.ndarray:
    """A point at u in [0, 1] along a Catmull-Rom spline through ``points`` (ends continued straight)."""
    pts = [2 * points[0] - points[1], *points, 2 * points[-1] - points[-2]]
    segments = len(points) - 1
    s = min(max(u, 0.0), 1.0) * segments
    i = min(int(s), segments - 1)
    t = s - i
    p0, p1, p2, p3 = pts[i:i + 4]
    return 0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t * t
                  + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3)


def _camera_path(rnd, made, stream, ctx):
    from .looking import looked_pose

    frames = ctx["frames"]
    cams = _cameras(rnd, ctx)

    def draw():
        start, end = (np.array(stream.draw(f, getattr(rnd, f))) for f in ("start", "end"))
        points = [start, np.array(stream.draw("via", rnd.via)), end] if rnd.via is not None else [start, end]
        return points

    def place(points, k: int):
        u = k / max(frames - 1, 1)
        here = catmull_rom(points, u)
        ahead = catmull_rom(points, min(u + 1e-3, 1.0)) if u < 1 else here + (here - catmull_rom(points, u - 1e-3))
        target = resolve_point(rnd.look_at, made) if rnd.look_at is not None else Vector(ahead)
        for cam in cams:
            cam.location = Vector(here)
            bpy.context.view_layer.update()
            point_at(cam, target)

    points = looked_pose(rnd, made, stream, ctx, cams, draw, lambda p: place(p, 0))

    def at_frame(k: int):
        place(points, k)

    return at_frame


def _camera_shake(rnd, made, stream, ctx):
    rate = ctx["frame_rate"]
    cams = _cameras(rnd, ctx)
    amplitude, angle = stream.draw("amplitude", rnd.amplitude), math.radians(stream.draw("angle", rnd.angle))
    frequency = stream.draw("frequency", rnd.frequency)
    # per camera and axis: three sines of nearby frequencies with random phases (smooth, never periodic-looking)
    waves = {cam.name: (stream.rng.uniform(0.6, 1.4, (6, 3)) * frequency, stream.rng.uniform(0, 2 * math.pi, (6, 3)))
             for cam in cams}
    stream.record("waves", {n: [f.tolist(), p.tolist()] for n, (f, p) in waves.items()})
    last: dict[str, tuple] = {}

    def at_frame(k: int):
        t = k / rate
        bpy.context.view_layer.update()  # the pose other randomizers just gave the camera
        for cam in cams:
            freqs, phases = waves[cam.name]
            wiggle = np.sin(2 * math.pi * freqs * t + phases).sum(axis=1) / 3.0
            current = cam.matrix_world.copy()
            base = last[cam.name][0] if cam.name in last and current == last[cam.name][1] else current
            offset = Matrix.Translation(Vector(wiggle[:3] * amplitude))
            turn = Euler((wiggle[3:] * angle).tolist(), "XYZ").to_matrix().to_4x4()
            cam.matrix_world = offset @ base @ turn
            bpy.context.view_layer.update()
            last[cam.name] = (base, cam.matrix_world.copy())

    at_frame(0)
    return at_frame


APPLY = {"object_motion": _object_motion, "camera_path": _camera_path, "camera_shake": _camera_shake}
