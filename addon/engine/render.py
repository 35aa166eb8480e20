"""One Cycles render per frame yields every pass as numpy arrays (see BPY_NOTES.md).

In background mode the Render Result has no pixels in Python (nor has a Viewer node: checked on bpy 5.0 and
5.3), so the frame is saved once as a multilayer EXR (all passes, 32-bit, uncompressed, single-part: the
fastest to write and read, tests/bench/passes_io.py) and read back with OpenEXR, and once as an 8-bit PNG (the
colour-managed RGB). Both go to memory files (:class:`PassFiles`), not to a disk.
"""
from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from ..core.dataset.native import png_without_text
from ..core.exr import read_exr
from .devices import DeviceInfo

log = logging.getLogger(__name__)

BACKGROUND_DEPTH = 1e9  # Cycles writes 1e10 where no surface is hit
MAX_FILTER_WIDTH = 1.5  # pixels


@dataclass
class FramePasses:
    depth: np.ndarray  # float32 (H, W): planar camera z in metres; inf where no surface
    normals: np.ndarray  # float32 (H, W, 3): world space, averaged over samples then renormalised; 0 where
    #                      no sample hit a surface (so edge pixels may have a normal but index 0 and depth inf)
    index: np.ndarray  # int32 (H, W): Object Index (exact integers, one point sample per pixel)
    vector: np.ndarray | None  # float32 (H, W, 4): the Vector pass X, Y, Z, W when asked for (see core.flow)
    render_seconds: float  # the bpy.ops.render.render() call alone
    write_seconds: float  # saving the EXR and PNG and reading the passes back
    resolution: tuple[int, int]  # (W, H)


DEFAULT_VIEW = {"view_transform": "AgX", "look": "None", "exposure": 0.0, "gamma": 1.0}


class RenderError(Exception):
    pass


def look_name(view_transform: str, look: str) -> str:
    """Blender's name of a look for a view transform (AgX's looks carry its name; it calls the middle one
    Base Contrast)."""
    if look == "None":
        return look
    if view_transform == "AgX":
        return "AgX - " + ("Base Contrast" if look == "Medium Contrast" else look)
    if look in ("Punchy", "Greyscale"):
        raise RenderError(f"look {look!r} exists for the AgX view transform only, not {view_transform!r}")
    return look


# The recipe's Cycles speed settings (components.CyclesTier and Cycles) that a sensor may leave to the scene: recipe
# name -> the scene.cycles property. Left out, a setting keeps the scene's own value (see scene_speed).
SPEED = {"adaptive_sampling": "use_adaptive_sampling", "adaptive_threshold": "adaptive_threshold",
         "max_bounces": "max_bounces", "light_tree": "use_light_tree", "denoise_quality": "denoising_quality"}
ENUM_SPEED = ("denoise_quality",)  # lower case in the recipe, upper case in Blender


@contextmanager
def scene_speed(scene):
    """The scene's own speed settings as recipe values (what a sensor that sets none renders with), given back
    to the scene after the block."""
    own = {key: getattr(scene.cycles, prop) for key, prop in SPEED.items()}
    try:
        yield {key: value.lower() if key in ENUM_SPEED else value for key, value in own.items()}
    finally:
        for key, prop in SPEED.items():
            setattr(scene.cycles, prop, own[key])


class WorldMaps:
    """The recipe's ``world_map`` (the world's light importance map) on the world a sensor renders with; every world
    touched gets its own back at the end of the block (:func:`world_maps`). A sensor that sets none renders with the
    world's own. A setting is written only when it differs: Cycles rebuilds the map whenever the world changes."""

    def __init__(self):
        self.own: dict[int, tuple] = {}  # world pointer -> (world, sampling_method, sample_map_resolution)

    def set(self, world, value: int | None):
        """Set ``world``'s map for the next render; returns what it renders with: the map's height, 0 for none,
        "automatic" (None without a world)."""
        if world is None:
            return None
        settings = world.cycles
        _, method, resolution = self.own.setdefault(world.as_pointer(), (world, settings.sampling_method,
                                                                          settings.sample_map_resolution))
        if value == 0:
            method = "NONE"
        elif value is not None:
            method, resolution = "MANUAL", value
        if (settings.sampling_method, settings.sample_map_resolution) != (method, resolution):
            settings.sampling_method, settings.sample_map_resolution = method, resolution
        return {"NONE": 0, "MANUAL": resolution}.get(method, method.lower())

    def restore(self) -> None:
        for world, method, resolution in self.own.values():
            try:
                if (world.cycles.sampling_method, world.cycles.sample_map_resolution) != (method, resolution):
                    world.cycles.sampling_method, world.cycles.sample_map_resolution = method, resolution
            except ReferenceError:  # removed with the job's scene
                pass
        self.own.clear()


@contextmanager
def world_maps():
    maps = WorldMaps()
    try:
        yield maps
    finally:
        maps.restore()


def speed_record(scene) -> dict:
    """The speed settings the scene renders with, by their recipe names (for the frame's metadata)."""
    record = {key: getattr(scene.cycles, prop) for key, prop in SPEED.items()}
    record.update(persistent_data=scene.render.use_persistent_data,
                  denoiser=scene.cycles.denoiser if scene.cycles.use_denoising else None)
    return {key: value.lower() if isinstance(value, str) else value for key, value in record.items()}


def configure(scene, *, resolution: tuple[int, int], samples: int, denoise: bool = False,
              device: DeviceInfo | None = None, clip: tuple[float, float] | None = None, view: dict | None = None,
              transparent: bool = False, shutter: float = 0.0, vector: bool = False, speed: dict | None = None) -> None:
    """Cycles with the passes synthfarm reads, the sensor's colour management (``view``: view_transform,
    look, exposure, gamma; AgX by default), and a fixed noise seed. ``transparent``: the world is not seen
    (a backplate goes behind), it still lights the scene. Motion blur with a ``shutter`` (in frames) and the
    Vector pass when asked for. ``speed``: Cycles speed settings by their recipe names (components.Cycles);
    persistent data is on and the denoiser is OpenImageDenoise unless it says otherwise."""
    speed = speed or {}
    render, cycles = scene.render, scene.cycles
    render.engine = "CYCLES"
    render.resolution_x, render.resolution_y = resolution
    render.resolution_percentage = 100
    render.pixel_aspect_x = render.pixel_aspect_y = 1.0
    render.film_transparent = transparent
    render.use_persistent_data = speed.get("persistent_data", True)  # keeps scene data between renders
    render.use_compositing = False
    render.use_sequencer = False
    cycles.samples = samples
    cycles.use_denoising = denoise
    if denoise:
        denoiser = speed.get("denoiser", "openimagedenoise")
        if denoiser == "optix" and (device is None or device.kind != "OPTIX"):
            raise RenderError(f"cycles.denoiser: optix needs an NVIDIA GPU rendering with OptiX; this process renders "
                              f"on {device.kind if device else 'an unknown device'}: choose openimagedenoise")
        cycles.denoiser = denoiser.upper()
    for key, prop in SPEED.items():
        if key in speed:
            setattr(cycles, prop, speed[key].upper() if key in ENUM_SPEED else speed[key])
    cycles.seed = 0
    cycles.use_animated_seed = False
    # The Object Index pass is a point sample, but a pixel filter wider than ~1.5 px was seen to flip the
    # index of about one edge pixel in 2,000 at 640x480 (3 px); up to 1.5 px it matched a box filter exactly.
    cycles.filter_width = min(cycles.filter_width, MAX_FILTER_WIDTH)
    if device is not None:
        cycles.device = "CPU" if device.kind == "CPU" else "GPU"
    view = {**DEFAULT_VIEW, **(view or {})}
    settings = scene.view_settings
    settings.view_transform = view["view_transform"]
    settings.look = look_name(view["view_transform"], view["look"])
    settings.exposure, settings.gamma = view["exposure"], view["gamma"]
    layer = scene.view_layers[0]
    layer.use_pass_z = layer.use_pass_normal = layer.use_pass_object_index = True
    layer.use_pass_vector = vector
    render.use_motion_blur = shutter > 0
    if shutter > 0:
        render.motion_blur_shutter = shutter
    if clip is not None and scene.camera is not None:
        scene.camera.data.clip_start, scene.camera.data.clip_end = clip


# Everything configure() and _save() change, in an order that can be set back (media type before format).
CHANGED_SETTINGS = {
    "render": ("engine", "resolution_x", "resolution_y", "resolution_percentage", "pixel_aspect_x", "pixel_aspect_y",
               "film_transparent", "use_persistent_data", "use_compositing", "use_sequencer", "use_motion_blur",
               "motion_blur_shutter"),
    "cycles": ("samples", "use_denoising", "denoiser", "seed", "use_animated_seed", "filter_width", "device",
               *SPEED.values()),
    "view_settings": ("view_transform", "look", "exposure", "gamma"),
    "render.image_settings": ("media_type", "file_format", "color_mode", "color_depth", "compression", "exr_codec",
                              "use_exr_interleave"),
    "view_layers[0]": ("use_pass_z", "use_pass_normal", "use_pass_object_index", "use_pass_vector"),
}


@contextmanager
def kept_settings(scene):
    """Render with synthfarm's settings, then give the user's scene its own settings back."""
    saved = {path: {name: getattr(scene.path_resolve(path), name) for name in names}
             for path, names in CHANGED_SETTINGS.items()}
    try:
        yield
    finally:
        for path, values in saved.items():
            struct = scene.path_resolve(path)
            for name, value in values.items():
                try:
                    setattr(struct, name, value)
                except (TypeError, ValueError) as err:  # e.g. an enum value this format does not offer
                    log.debug("could not restore %s.%s: %s", path, name, err)


def _save(image, scene, path: Path, multilayer: bool) -> None:
    settings = scene.render.image_settings
    if multilayer:
        settings.media_type = "MULTI_LAYER_IMAGE"  # must come before the format (bpy 5.0)
        settings.file_format = "OPEN_EXR_MULTILAYER"
        settings.color_depth = "32"
        settings.exr_codec = "NONE"  # a scratch file read once: no time spent compressing
        settings.use_exr_interleave = True  # one part for all passes: half the time of multi-part to write
    else:
        settings.media_type = "IMAGE"
        settings.file_format = "PNG"
        settings.color_mode = "RGBA" if scene.render.film_transparent else "RGB"
        settings.color_depth = "8"
        settings.compression = 15
    image.save_render(str(path), scene=scene)


class PassFiles:
    """The two files a render is saved to and read back from: ``exr`` (every pass) and ``png`` (the colour
    image, which lens remaps and image effects rewrite in place). Anonymous memory files (memfd, opened by path
    through /proc/self/fd) where the system has them: nothing touches a disk and nothing is left behind when the
    process is killed; else files in ``scratch``. One set per process at a time; :meth:`close` frees them."""

    def __init__(self, scratch: Path):
        self._fds: list[int] = []
        self.exr, self.png = (self._memory(name) or Path(scratch) / name for name in ("passes.exr", "rgb.png"))
        if not self.in_memory:
            Path(scratch).mkdir(parents=True, exist_ok=True)

    def _memory(self, name: str) -> Path | None:
        if not hasattr(os, "memfd_create"):  # Linux only
            return None
        try:
            fd = os.memfd_create(name)
        except OSError:  # refused by a sandbox
            return None
        path = Path(f"/proc/{os.getpid()}/fd/{fd}")
        if not path.exists():  # no /proc
            os.close(fd)
            return None
        self._fds.append(fd)
        return path

    @property
    def in_memory(self) -> bool:
        return bool(self._fds)

    def png_bytes(self) -> bytes:
        """The colour image as it goes into the dataset: without text and time chunks (Blender writes the date
        and render times there), so that the same render gives the same bytes."""
        return png_without_text(self.png.read_bytes())

    def clear(self, *paths: Path) -> None:
        """Give the memory back (or remove the files): ``paths``, or both."""
        for path in paths or (self.exr, self.png):
            if self.in_memory:
                os.truncate(path, 0)
            else:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        self.clear()
        for fd in self._fds:
            os.close(fd)
        self._fds = []

    def __enter__(self) -> "PassFiles":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _channel(channels: dict[str, np.ndarray], suffix: str) -> np.ndarray:
    for name, pixels in channels.items():
        if name.endswith(suffix):
            return pixels
    raise RuntimeError(f"the render has no {suffix!r} pass (channels: {sorted(channels)})")


def render_frame(scene, files: PassFiles) -> FramePasses:
    """Render ``scene`` once; save the RGB PNG to ``files.png`` and return the passes.

    With motion blur or depth of field, the passes come from a second, sharp render (1 sample): Cycles takes
    ids and depth from a sample at a random time within the shutter and a random point of the aperture, and
    leaves the Vector pass empty under motion blur; labels describe the frame's own instant, in focus."""
    files.clear()  # nothing of the last frame can remain
    start = time.perf_counter()
    bpy.ops.render.render()
    image = bpy.data.images["Render Result"]
    exr_path, rgb_path = files.exr, files.png
    render_seconds = time.perf_counter() - start
    dof = scene.camera.data.dof
    blurred = (scene.render.use_motion_blur, dof.use_dof)
    if any(blurred):
        _save(image, scene, rgb_path, multilayer=False)
        kept = scene.cycles.samples, scene.cycles.use_denoising
        scene.render.use_motion_blur, dof.use_dof = False, False
        scene.cycles.samples, scene.cycles.use_denoising = 1, False
        try:
            again = time.perf_counter()
            bpy.ops.render.render()
            render_seconds += time.perf_counter() - again
        finally:
            scene.render.use_motion_blur, dof.use_dof = blurred
            scene.cycles.samples, scene.cycles.use_denoising = kept
        rendered = time.perf_counter()
        _save(image, scene, exr_path, multilayer=True)
    else:
        rendered = time.perf_counter()
        _save(image, scene, exr_path, multilayer=True)
        _save(image, scene, rgb_path, multilayer=False)
    channels = read_exr(exr_path)
    files.clear(exr_path)
    depth = _channel(channels, ".Depth.Z").astype(np.float32)
    depth[depth >= BACKGROUND_DEPTH] = np.inf
    normals = np.stack([_channel(channels, f".Normal.{axis}") for axis in "XYZ"], axis=-1).astype(np.float32)
    length = np.linalg.norm(normals, axis=-1, keepdims=True)
    normals = np.divide(normals, length, out=np.zeros_like(normals), where=length > 1e-8)
    index = np.rint(_channel(channels, ".Object Index.X")).astype(np.int32)
    vector = None
    if scene.view_layers[0].use_pass_vector:
        vector = np.stack([_channel(channels, f".Vector.{axis}") for axis in "XYZW"], axis=-1).astype(np.float32)
    return FramePasses(depth, normals, index, vector, render_seconds, time.perf_counter() - rendered,
                       (scene.render.resolution_x, scene.render.resolution_y))
