"""Sensors: cameras made from the recipe, and their intrinsics/extrinsics in the OpenCV convention.

Pixel coordinates: (0, 0) is the top-left corner of the top-left pixel, x right, y down; a pixel's centre
is at (col + 0.5, row + 0.5). Camera space: x right, y down, z forward (OpenCV).
"""
from __future__ import annotations

import math

import bpy
import numpy as np

from ..core.groundtruth import blender_to_opencv_camera
from ..core.recipe import Recipe
from ..core.sampling import Sampler


VIEW_FIELDS = ("view_transform", "look", "exposure", "gamma")  # colour management, drawn per job


def build_cameras(recipe: Recipe, sampler: Sampler, collection) -> dict:
    """One camera object per sensor, lens drawn from its stream. Returns {sensor name: object}."""
    cameras = {}
    for sensor in recipe.sensors:
        stream = sampler.stream(f"sensors/{sensor.name}")
        data = bpy.data.cameras.new(sensor.name)
        data.sensor_fit = "HORIZONTAL"
        data.sensor_width = sensor.sensor_width
        data.clip_start, data.clip_end = sensor.clip
        if sensor.fov is not None:
            data.lens_unit = "FOV"
            data.angle = math.radians(stream.draw("fov", sensor.fov))
        else:
            data.lens = stream.draw("focal_length", sensor.focal_length) if sensor.focal_length else 35.0
        obj = bpy.data.objects.new(f"sensor_{sensor.name}", data)
        obj["synthfarm_resolution"] = list(sensor.resolution)
        obj["synthfarm_view"] = {field: stream.draw(field, getattr(sensor, field)) for field in VIEW_FIELDS}
        collection.objects.link(obj)
        obj.location = (0.0, -3.0, 1.5)
        cameras[sensor.name] = obj
    return cameras


def sensor_resolution(sensor, preview: bool, preview_scale: float) -> tuple[int, int]:
    w, h = sensor.resolution
    if preview:
        w, h = max(4, round(w * preview_scale)), max(4, round(h * preview_scale))
    return int(w), int(h)


def intrinsics(camera_obj, scene) -> np.ndarray:
    """The 3x3 K of a Blender camera for the scene's render settings (sensor fit, shift, pixel aspect)."""
    cam = camera_obj.data
    render = scene.render
    scale = render.resolution_percentage / 100.0
    width, height = render.resolution_x * scale, render.resolution_y * scale
    aspect_x, aspect_y = render.pixel_aspect_x, render.pixel_aspect_y
    fit = cam.sensor_fit
    if fit == "AUTO":
        fit = "HORIZONTAL" if width * aspect_x >= height * aspect_y else "VERTICAL"
    sensor = cam.sensor_height if cam.sensor_fit == "VERTICAL" else cam.sensor_width
    pixel_ratio = aspect_y / aspect_x
    reference = width if fit == "HORIZONTAL" else height * pixel_ratio
    fx = cam.lens / sensor * reference
    fy = fx / pixel_ratio
    cx = width / 2.0 - cam.shift_x * reference
    cy = height / 2.0 + cam.shift_y * reference / pixel_ratio
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def camera_record(camera_obj, scene) -> dict:
    """What the metadata says about a camera for one frame."""
    cam_to_world, world_to_cam = blender_to_opencv_camera(np.array(camera_obj.matrix_world))
    return {
        "convention": "opencv: x right, y down, z forward; pixel (0,0) is the top-left corner of the image",
        "resolution": [scene.render.resolution_x, scene.render.resolution_y],
        "K": intrinsics(camera_obj, scene).tolist(),
        "cam_to_world": np.asarray(cam_to_world).tolist(),
        "world_to_cam": np.asarray(world_to_cam).tolist(),
        "lens_mm": camera_obj.data.lens,
        "sensor_width_mm": camera_obj.data.sensor_width,
        "clip": [camera_obj.data.clip_start, camera_obj.data.clip_end],
        "depth_units": "metres, planar z along the optical axis; background is inf",
    }
