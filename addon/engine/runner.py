"""Run one job in a persistent Blender process: build, randomize, render every frame and sensor,
label, write. Used by the CLI, the farm's Blender child and the UI.

The :class:`Runner` lives as long as the process: it keeps the base scene, the asset cache and the
primitive meshes between jobs, and each job runs in a :class:`~.scene.JobScope` so nothing a job
adds survives it.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np

from ..core import classes as class_list
from ..core.jobs import JobSpec
from ..core.recipe import Recipe, resolve_path
from ..core.sampling import Sampler
from . import assets as asset_lib
from ..core.dataset.background import BackgroundWriter
from ..core.dataset.native import DatasetWriter, atomic_path
from ..core.flow import CONVENTION, flow_from_vector, flow_through_view
from ..core.lens import stereo_disparity
from ..core.video import encode_mp4, require_encoder
from . import devices, motion, render, sensors, views
from .generators import Primitives, generate, labelled_objects
from .image_stages import apply_image_stages, image_stages
from .labels import GeometryCache, frame_labels
from .modifiers import apply_modifiers
from .randomizers import apply_randomizers
from .scene import BaseScene, JobScope, labelled_class

log = logging.getLogger(__name__)


@dataclass
class JobReport:
    job_id: int
    frames: int = 0
    objects: int = 0
    render_seconds: float = 0.0
    wall_seconds: float = 0.0
    timings: dict = field(default_factory=dict)
    stems: list = field(default_factory=list)  # the file stem of every frame written


def versions() -> dict:
    from ..core import __version__

    return {"synthfarm": __version__, "blender": bpy.app.version_string,
            "blender_build": bpy.app.build_hash.decode(errors="replace")}


def animated(recipe: Recipe, job: JobSpec) -> bool:
    """Whether a job plays as animation: a sequence, or a frame with motion blur or optical flow."""
    return job.frames > 1 or any(s.shutter > 0 or "flow" in s.outputs for s in recipe.sensors)


def write_videos(recipe: Recipe, job: JobSpec, writer: BackgroundWriter) -> None:
    """An MP4 of each view that asks for ``video`` (sequences only), beside the job's first frame."""
    if job.frames < 2 or not any("video" in sensor.outputs for _, sensor in recipe.views()):
        return
    writer.drain()  # the frames' images on disk
    for view_name, sensor in recipe.views():
        if "video" in sensor.outputs:
            frames = [writer.frame_paths(job.id, k, view_name)["image"] for k in range(job.frames)]
            target = writer.frame_paths(job.id, 0, view_name)["video"]
            target.parent.mkdir(exist_ok=True)
            with atomic_path(target) as tmp:
                encode_mp4(frames, tmp, recipe.frame_rate)


class Runner:
    """Renders jobs one after another in this Blender process."""

    def __init__(self, device: str = "auto", gpu_index: int | None = None, use_current_scene: bool = False):
        self.base = BaseScene()
        self.cache = asset_lib.AssetCache()
        self.primitives = Primitives()
        self.geometry = GeometryCache()
        self.views = views.Views()
        self.device_preference, self.gpu_index = device, gpu_index
        self.use_current_scene = use_current_scene
        self.base_dir: Path | None = None
        self.device: devices.DeviceInfo | None = None
        self.classes: list[str] = []
        self.scene_speed: dict = {}  # during a job: the scene's own Cycles speed settings (render.scene_speed)
        self.world_maps = render.WorldMaps()  # during a job: the worlds whose importance map a sensor set
        self.files: render.PassFiles | None = None  # the render's memory files, made once (see pass_files)
        self._hashed: tuple[Recipe, str] | None = None  # the last recipe and its hash (a hash costs ~5 ms)

    def release(self) -> None:
        """Forget and remove the caches (the add-on calls this when a run in the user's scene ends)."""
        self.cache.release()
        self.primitives.release()
        self.geometry.release()
        if self.files is not None:
            self.files.close()
            self.files = None

    def recipe_hash(self, recipe: Recipe) -> str:
        """``recipe.hash()``, computed once for the jobs of one Recipe object (every frame's metadata has it)."""
        if self._hashed is None or self._hashed[0] is not recipe:
            self._hashed = (recipe, recipe.hash())
        return self._hashed[1]

    @contextmanager
    def pass_files(self, scratch: Path):
        """The files a job's renders are saved to and read back from: memory files made once for the process (and
        emptied after each job), or, where the system has none, files in the job's ``scratch`` folder."""
        if self.files is None:
            files = render.PassFiles(scratch)
            if not files.in_memory:
                with files:
                    yield files
                return
            self.files = files
        try:
            yield self.files
        finally:
            self.files.clear()

    def keep(self) -> set[int]:
        return self.cache.datablocks() | self.primitives.session_ids()

    def prepare(self, recipe: Recipe, base_dir: Path | None) -> None:
        self.base_dir = base_dir
        if any("video" in s.outputs for s in recipe.sensors):
            require_encoder()
        base = resolve_path(recipe.scene.base, base_dir) if recipe.scene.base else None
        if self.base.prepare(base, self.use_current_scene):
            self.cache.clear()
            self.primitives.clear()
            self.geometry.clear()
            self.device = None
        if self.device is None:
            self.device = devices.select_device(bpy.context.scene, self.device_preference, self.gpu_index)
        base_labels = {labelled_class(o) for o in bpy.context.scene.objects if labelled_class(o)}
        self.classes = class_list.dataset_classes(recipe, base_dir, extra=base_labels)

    def run_job(self, recipe: Recipe, base_dir: Path | None, job: JobSpec, writer: DatasetWriter | BackgroundWriter,
                scratch: Path, should_stop=lambda: None) -> JobReport:
        """Render every frame and sensor of ``job`` into ``writer``. ``should_stop`` is called between
        frames and may raise (e.g. KeyboardInterrupt) to stop at a frame boundary. Frames are written while the
        next one renders; into a DatasetWriter, they are all durable when this returns; into a caller's
        BackgroundWriter, they may still be queued (the caller drains it)."""
        if isinstance(writer, DatasetWriter):
            with BackgroundWriter(writer) as frames:
                return self.run_job(recipe, base_dir, job, frames, scratch, should_stop)
        start = time.perf_counter()
        self.prepare(recipe, base_dir)
        scene = bpy.context.scene
        report = JobReport(job.id)
        with (JobScope(keep=self.keep) as scope, render.scene_speed(scene) as self.scene_speed,
              render.world_maps() as self.world_maps, self.pass_files(scratch) as files):
            motion.set_frame_rate(scene, recipe.frame_rate)
            sampler, cameras, updates = self.build(recipe, base_dir, job, scope.collection)
            keyed = motion.Keyed(scene, updates, job.frames, recipe.frame_rate) if animated(recipe, job) else None
            report.timings["setup"] = time.perf_counter() - start
            objects = self._assign_instance_ids(scene)  # once per job: an instance id is also its track id
            try:
                for k in range(job.frames):
                    if k:
                        should_stop()
                    if keyed is not None:
                        keyed.frame(k)
                    else:
                        for update in updates:
                            update(k)
                    bpy.context.view_layer.update()
                    for view_name, sensor in recipe.views():
                        self._render_sensor(recipe, job, k, view_name, sensor, cameras[view_name], objects,
                                            sampler, writer, files, report)
                    report.frames += 1
                    report.objects = max(report.objects, len(objects))
            finally:
                if keyed is not None:
                    keyed.release()
        write_videos(recipe, job, writer)  # after the job's scene is gone: meanwhile its last frame is written
        self.geometry.clear()  # mesh addresses may be reused once the job's data is freed (models stay)
        report.wall_seconds = time.perf_counter() - start
        return report

    def build(self, recipe: Recipe, base_dir: Path | None, job: JobSpec, collection):
        """Make the job's scene in ``collection``: objects, their looks, cameras and placements.
        Returns (sampler, cameras by sensor name, per-frame updates). Used by run_job and by the
        add-on's Randomize (which keeps the result in the viewport). Call :meth:`prepare` first."""
        sampler = Sampler(job.seed, job.id, job.params)
        made = generate(recipe, base_dir, sampler, collection, self.cache, self.primitives)
        apply_modifiers(recipe, made, sampler, cache=self.cache, base_dir=base_dir)
        cameras = sensors.build_cameras(recipe, sampler, collection, made)
        updates = apply_randomizers(recipe, made, sampler, cameras=cameras, collection=collection,
                                    base_dir=base_dir, frames=job.frames)
        return sampler, cameras, updates

    def _assign_instance_ids(self, scene) -> list:
        """Labelled, rendered objects get pass_index 1..N (the instance id); all others 0."""
        objects = labelled_objects(scene)
        for obj in scene.objects:
            obj.pass_index = 0
        for i, obj in enumerate(objects, start=1):
            obj.pass_index = i
        if len(objects) > 65535:
            raise RuntimeError("more than 65535 labelled objects in one frame: masks are 16-bit")
        return objects

    def _render_sensor(self, recipe, job, k, view_name, sensor, camera, objects, sampler, writer, files, report):
        scene = bpy.context.scene
        scene.camera = camera
        resolution = sensor.resolution_for(job.preview, recipe.output.preview.scale)
        view = self.views.of(camera, resolution)
        samples = min(sensor.samples, recipe.output.preview.samples) if job.preview else sensor.samples
        stages = image_stages(recipe, sensor.name)
        speed = {**self.scene_speed, **(sensor.cycles.tier(job.preview) if sensor.cycles else {})}
        render.configure(scene, resolution=view.source.size, samples=samples,
                         denoise=sensor.denoise and not job.preview, device=self.device, clip=tuple(sensor.clip),
                         view=camera.get("synthfarm_view"), transparent=any(rnd.kind == "backplate" for rnd in stages),
                         shutter=sensor.shutter, vector="flow" in sensor.outputs, speed=speed)
        world_map = self.world_maps.set(scene.world, speed.get("world_map"))
        sensors.aim_render(camera, view.source)
        passes = views.to_image(view, render.render_frame(scene, files), files.png)
        t_effects = time.perf_counter()
        if stages:
            apply_image_stages(stages, files.png, sampler, base_dir=self.base_dir, item=f"{view_name}/{k:04d}")
        effects_seconds = time.perf_counter() - t_effects
        outputs = set(sensor.outputs)
        t_labels = time.perf_counter()
        class_ids = {name: i for i, name in enumerate(self.classes, start=1)}
        camera_info = sensors.camera_record(camera, scene, view.lens)
        annotations = frame_labels(scene, objects, passes.index, view.lens.K, np.array(camera_info["world_to_cam"]),
                                   class_ids, self.geometry, passes.depth, view=view)
        flow = None
        if passes.vector is not None:
            flow = tuple(flow_through_view(view, f) for f in flow_from_vector(*np.moveaxis(passes.vector, -1, 0)))
        disparity = None
        if "disparity" in sensor.outputs and view_name == sensor.name:
            disparity = stereo_disparity(view.lens.K[0, 0], sensor.stereo_baseline, passes.depth)
        semantic = None
        if "semantic_mask" in outputs:
            lut = np.zeros(len(objects) + 1, dtype=np.uint16)
            for record in annotations:
                lut[record["instance_id"]] = record["class_id"]
            semantic = np.take(lut, passes.index, mode="clip")  # ids beyond the table's (none) as its last, in one pass
        labels_seconds = time.perf_counter() - t_labels
        annotation = {"job": job.id, "frame": k, "sensor": view_name, "image_size": list(resolution),
                      "frame_rate": recipe.frame_rate,
                      "camera": {"K": camera_info["K"], "world_to_cam": camera_info["world_to_cam"],
                                 "lens": camera_info["lens"]},
                      "classes": self.classes, "objects": annotations}
        metadata = {"job": job.id, "frame": k, "sensor": view_name, "seed": job.seed, "params": job.params,
                    "preview": job.preview, "samples": samples, "denoise": bpy.context.scene.cycles.use_denoising, "recipe": recipe.name, "recipe_hash": self.recipe_hash(recipe),
                    "sampled": sampler.log, "camera": camera_info, "device": self.device.to_dict(),
                    "frame_rate": recipe.frame_rate, "scene_frame": scene.frame_current,
                    **({"flow": CONVENTION} if flow is not None else {}),
                    **({"disparity": f"pixels, left view: d = fx * {sensor.stereo_baseline} / z; the right view sees "
                                     "the point at x - d"} if disparity is not None else {}),
                    "cycles": {**render.speed_record(scene), "world_map": world_map},
                    "versions": versions(),
                    "timings": {"setup": report.timings.get("setup"), "render": passes.render_seconds,
                                "passes_io": passes.write_seconds, "effects": effects_seconds,
                                "labels": labels_seconds}}
        timings = dict(metadata["timings"])  # the metadata is the writer's from here on
        t_write = time.perf_counter()
        for key in {record["model"] for record in annotations}:
            writer.write_model(key, *self.geometry.models[key])
        writer.write_frame(  # after the labels: the encoders would take their cores (the frame lands whole)
            job.id, k, view_name, image_png=files.png_bytes(),
            depth=passes.depth if "depth" in outputs else None,
            normals=passes.normals if "normals" in outputs else None,
            instance_mask=passes.index.astype(np.uint16) if "instance_mask" in outputs else None,
            semantic_mask=semantic, flow=flow, disparity=disparity, annotation=annotation, metadata=metadata)
        timings["write"] = time.perf_counter() - t_write  # queueing: it is written while the next frame renders
        report.stems.append(writer.frame_stem(job.id, k, view_name))
        report.render_seconds += passes.render_seconds
        for key, value in timings.items():
            report.timings[key] = report.timings.get(key, 0.0) + (value or 0.0) if key != "setup" else value
