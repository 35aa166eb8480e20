"""Sensors: cameras made from the recipe, and their intrinsics/extrinsics in the OpenCV convention.

Pixel coordinates: (0, 0) is the top-left corner of the top-left pixel, x right, y down; a pixel's centre
is at (col + 0.5, row + 0.5). Camera space: x right, y down, z forward (OpenCV).
"""
from __future__ import annotations

import math

import bpy
import numpy as np

from mathutils import Euler, Matrix

from ..core.components import COEFFICIENTS
from ..core.groundtruth import blender_to_opencv_camera
from ..core.lens import Lens
from ..core.recipe import Recipe
from ..core.sampling import Sampler


VIEW_FIELDS = ("view_transform", "look", "exposure", "gamma")  # colour management, drawn per job
LENS_PROP = "synthfarm_lens"  # on a camera object: the lens drawn for the job (model, coefficients, offset)


def build_cameras(recipe: Recipe, sampler: Sampler, collection, made: dict | None = None) -> dict:
    """One camera object per view (a stereo sensor has two), lens drawn from the sensor's stream; mounted
    sensors are parented to their mount (a rig). Returns {view name: object}."""
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
        lens = {"model": sensor.lens_model, "lens_mm": data.lens, "width": sensor.resolution[0],
                "resolution": list(sensor.resolution),
                "principal_point": list(sensor.principal_point),
                "coeffs": [stream.draw(n, getattr(sensor, n)) for n in COEFFICIENTS[sensor.lens_model]]}
        _depth_of_field(sensor, data, stream, made or {})
        obj = bpy.data.objects.new(f"sensor_{sensor.name}", data)
        obj["synthfarm_resolution"] = list(sensor.resolution)
        obj["synthfarm_view"] = {field: stream.draw(field, getattr(sensor, field)) for field in VIEW_FIELDS}
        collection.objects.link(obj)
        obj.location = (0.0, -3.0, 1.5)
        obj[LENS_PROP] = lens
        cameras[sensor.name] = obj
        if sensor.stereo_baseline:
            right = bpy.data.objects.new(f"sensor_{sensor.name}_right", data)
            collection.objects.link(right)
            for prop in (LENS_PROP, "synthfarm_resolution", "synthfarm_view"):
                right[prop] = obj[prop]
            _mount(right, obj, (sensor.stereo_baseline, 0.0, 0.0), (0.0, 0.0, 0.0))
            cameras[f"{sensor.name}_right"] = right
    for sensor in recipe.sensors:
        if sensor.mount is not None:
            stream = sampler.stream(f"sensors/{sensor.name}")
            _mount(cameras[sensor.name], cameras[sensor.mount], stream.draw("mount_offset", sensor.mount_offset),
                   stream.draw("mount_rotation", sensor.mount_rotation))
    return cameras


def _depth_of_field(sensor, data, stream, made: dict) -> None:
    if sensor.fstop is None:
        return
    data.dof.use_dof = True
    data.dof.aperture_fstop = stream.draw("fstop", sensor.fstop)
    if sensor.focus_distance is not None:
        data.dof.focus_distance = stream.draw("focus_distance", sensor.focus_distance)
    elif sensor.focus_on is not None and made.get(sensor.focus_on):
        data.dof.focus_object = made[sensor.focus_on][0]


def _mount(child, parent, offset, rotation_deg) -> None:
    """Fix ``child`` to ``parent`` at an offset and rotation given in the parent's OpenCV frame."""
    flip = np.diag([1.0, -1.0, -1.0])  # OpenCV camera axes <-> Blender camera axes
    r_cv = np.array(Euler([math.radians(a) for a in rotation_deg], "XYZ").to_matrix())
    local = np.eye(4)
    local[:3, :3] = flip @ r_cv @ flip
    local[:3, 3] = flip @ np.asarray(offset, float)
    child.parent = parent
    child.matrix_parent_inverse = Matrix.Identity(4)
    child.matrix_basis = Matrix(local.tolist())


def view_lens(camera_obj, resolution: tuple[int, int]) -> Lens:
    """The image-forming lens of a view at a resolution: K from the drawn focal length (square pixels) and
    the principal point offset (scaled with the image), and the drawn distortion."""
    spec = camera_obj[LENS_PROP].to_dict() if LENS_PROP in camera_obj else {}
    width, height = resolution
    f = spec.get("lens_mm", camera_obj.data.lens) / camera_obj.data.sensor_width * width
    scale = width / spec.get("width", width)
    ppx, ppy = spec.get("principal_point", (0.0, 0.0))
    K = np.array([[f, 0.0, width / 2 + ppx * scale], [0.0, f, height / 2 + ppy * scale], [0.0, 0.0, 1.0]])
    return Lens(K, (int(width), int(height)), spec.get("model", "pinhole"), tuple(spec.get("coeffs", ())))


def aim_render(camera_obj, source: Lens) -> None:
    """Set the Blender camera so that its render (at ``source.size``) has exactly ``source.K``
    (horizontal sensor fit: shifts are in units of the image width)."""
    data = camera_obj.data
    width, height = source.size
    data.lens_unit = "MILLIMETERS"
    data.sensor_fit = "HORIZONTAL"
    data.lens = source.K[0, 0] * data.sensor_width / width
    data.shift_x = (width / 2 - source.K[0, 2]) / width
    data.shift_y = (source.K[1, 2] - height / 2) / width




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


def camera_record(camera_obj, scene, lens: Lens | None = None) -> dict:
    """What the metadata says about a camera for one frame (``lens``: the image's, when it is not the
    render's own pinhole)."""
    cam_to_world, world_to_cam = blender_to_opencv_camera(np.array(camera_obj.matrix_world))
    render_K = intrinsics(camera_obj, scene)
    lens = lens or Lens(render_K, (scene.render.resolution_x, scene.render.resolution_y))
    return {
        "convention": "opencv: x right, y down, z forward; pixel (0,0) is the top-left corner of the image",
        "resolution": list(lens.size),
        "K": lens.K.tolist(),
        "lens": lens.record(),
        **({"render_K": render_K.tolist(), "render_resolution": [scene.render.resolution_x,
                                                                  scene.render.resolution_y]}
           if lens.distorted else {}),
        "cam_to_world": np.asarray(cam_to_world).tolist(),
        "world_to_cam": np.asarray(world_to_cam).tolist(),
        "lens_mm": camera_obj[LENS_PROP]["lens_mm"] if LENS_PROP in camera_obj else camera_obj.data.lens,
        "sensor_width_mm": camera_obj.data.sensor_width,
        "clip": [camera_obj.data.clip_start, camera_obj.data.clip_end],
        "depth_units": "metres, planar z along the optical axis; background is inf",
    }
