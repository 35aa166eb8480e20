"""Render device selection: a GPU when one is present (OptiX, CUDA, HIP, oneAPI, Metal), else the CPU.

What is recorded is what renders: with no GPU, a GPU request falls back to the CPU with a warning and
the metadata says CPU.
"""
from __future__ import annotations

import logging
import os
import platform
import sys
from dataclasses import asdict, dataclass

import bpy

log = logging.getLogger(__name__)

BACKENDS = ("OPTIX", "CUDA", "HIP", "ONEAPI") + (("METAL",) if sys.platform == "darwin" else ())


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "CPU" or the GPU backend, e.g. "OPTIX"
    names: tuple[str, ...]
    threads: int

    def to_dict(self) -> dict:
        return asdict(self)


def _cycles_prefs():
    return bpy.context.preferences.addons["cycles"].preferences


def _gpus(prefs, backend: str) -> list:
    try:
        prefs.compute_device_type = backend
    except TypeError:  # backend not compiled into this build or not offered on this platform
        return []
    prefs.refresh_devices()
    return [d for d in prefs.get_devices_for_type(backend) if d.type == backend]


def _cpu(scene, prefs) -> DeviceInfo:
    scene.cycles.device = "CPU"
    try:
        prefs.compute_device_type = "NONE"
    except TypeError:
        pass
    return _cpu_info(scene, prefs.get_devices_for_type("CPU"))


def _cpu_info(scene, devices) -> DeviceInfo:
    threads = scene.render.threads if scene.render.threads_mode == "FIXED" else (os.cpu_count() or 1)
    return DeviceInfo("CPU", tuple(d.name for d in devices if d.type == "CPU") or (platform.machine(),), threads)


def current_device(scene, prefs) -> DeviceInfo:
    """The device the scene renders on with the user's own Cycles settings (nothing is changed): the add-on
    renders in the user's Blender as the user set it up."""
    backend = prefs.compute_device_type
    if scene.cycles.device == "GPU" and backend != "NONE":
        used = tuple(d.name for d in prefs.devices if d.type == backend and d.use)
        if used:
            return DeviceInfo(backend, used, 0)
    return _cpu_info(scene, prefs.devices)


def select_device(scene, preference: str = "auto", gpu_index: int | None = None) -> DeviceInfo:
    """Configure Cycles on ``scene`` for the best device allowed by ``preference`` (auto | cpu | gpu), or
    take the scene's and the preferences' as they are (current)."""
    if preference not in ("auto", "cpu", "gpu", "current"):
        raise ValueError(f"device must be auto, cpu, gpu or current, not {preference!r}")
    prefs = _cycles_prefs()
    if preference == "current":
        return current_device(scene, prefs)
    if preference != "cpu":
        for backend in BACKENDS:
            gpus = _gpus(prefs, backend)
            if not gpus:
                continue
            chosen = [gpus[gpu_index]] if gpu_index is not None and gpu_index < len(gpus) else gpus
            for device in prefs.get_devices_for_type(backend):
                device.use = device in chosen
            scene.cycles.device = "GPU"
            log.info("rendering on %s: %s", backend, ", ".join(d.name for d in chosen))
            return DeviceInfo(backend, tuple(d.name for d in chosen), 0)
        if preference == "gpu":
            log.warning("no GPU found (tried %s); rendering on the CPU", ", ".join(BACKENDS))
    return _cpu(scene, prefs)
