"""Benchmark: what getting a render's passes into numpy costs, per way of doing it, as a ratio to the bare
``bpy.ops.render.render()`` call measured in the same run (interleaved rounds, median per way).

In background mode Blender gives no pixels to Python (the Render Result and a Viewer node are empty: checked
here too), so every way saves the Render Result as a multilayer EXR (every pass) and as the colour PNG, reads
the EXR back with OpenEXR and takes the PNG's bytes without its text and time chunks. The ways differ in where
the files live and how the EXR is stored:

    disk      a scratch folder in the temp folder (synthfarm before issue 13)
    shm       a folder in /dev/shm (tmpfs)
    memfd     anonymous memory files (memfd_create), saved and read through /proc/self/fd/N
    memfd-*   the same with another EXR codec or the legacy interleaved single-part layout

    python tests/bench/passes_io.py [--size 320 240] [--rounds 7]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="synthfarm-bench-"))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

from synthfarm.addon.core.dataset.native import png_without_text as strip  # noqa: E402
from synthfarm.addon.core.exr import read_exr  # noqa: E402


def scene(size: tuple[int, int]):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    sc = bpy.context.scene
    for i in range(6):
        bpy.ops.mesh.primitive_uv_sphere_add(radius=0.4, location=(i - 2.5, 0.3 * i, 0))
        bpy.context.object.pass_index = i + 1
    bpy.ops.mesh.primitive_plane_add(size=20, location=(0, 0, -0.5))
    bpy.ops.object.light_add(type="SUN")
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    sc.collection.objects.link(cam)
    cam.location, cam.rotation_euler = (0, -7, 1.5), (1.35, 0, 0)
    sc.camera = cam
    sc.render.engine = "CYCLES"
    sc.cycles.samples = 1
    sc.cycles.use_denoising = False
    sc.render.resolution_x, sc.render.resolution_y = size
    sc.render.resolution_percentage = 100
    sc.render.use_persistent_data = True
    layer = sc.view_layers[0]
    layer.use_pass_z = layer.use_pass_normal = layer.use_pass_object_index = True
    return sc


def save(sc, path: str, exr: bool, codec: str = "NONE", interleave: bool = False) -> None:
    settings = sc.render.image_settings
    if exr:
        settings.media_type = "MULTI_LAYER_IMAGE"
        settings.file_format = "OPEN_EXR_MULTILAYER"
        settings.color_depth = "32"
        settings.exr_codec = codec
        if hasattr(settings, "use_exr_interleave"):  # bpy 5.3; 5.0 writes multi-part only
            settings.use_exr_interleave = interleave
    else:
        settings.media_type = "IMAGE"
        settings.file_format = "PNG"
        settings.color_mode = "RGB"
        settings.color_depth = "8"
        settings.compression = 15
    bpy.data.images["Render Result"].save_render(path, scene=sc)


def passes(channels: dict) -> tuple:
    def get(suffix):
        return next(v for k, v in channels.items() if k.endswith(suffix))
    return get(".Depth.Z"), get(".Object Index.X"), np.stack([get(f".Normal.{a}") for a in "XYZ"], -1)


def in_folder(folder: Path):
    def way(sc):
        exr, png = folder / "passes.exr", folder / "rgb.png"
        save(sc, str(exr), True)
        save(sc, str(png), False)
        out = passes(read_exr(exr))
        png.write_bytes(strip(png.read_bytes()))  # as drop_png_text did, in place
        data = png.read_bytes()
        exr.unlink()
        png.unlink()
        return out, data
    return way


def in_memfd(codec: str = "NONE", interleave: bool = False):
    exr_fd, png_fd = os.memfd_create("passes.exr"), os.memfd_create("rgb.png")

    def way(sc):
        exr, png = f"/proc/self/fd/{exr_fd}", f"/proc/self/fd/{png_fd}"
        save(sc, exr, True, codec, interleave)
        save(sc, png, False)
        out = passes(read_exr(exr))
        size = os.fstat(png_fd).st_size
        data = strip(os.pread(png_fd, size, 0))
        os.ftruncate(exr_fd, 0)
        os.ftruncate(png_fd, 0)
        return out, data
    return way


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, nargs=2, default=(320, 240))
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    sc = scene(tuple(args.size))
    bpy.ops.render.render()
    image = bpy.data.images["Render Result"]
    print(f"bpy {bpy.app.version_string}: Render Result pixels in background: {len(image.pixels)} values")
    disk = Path(tempfile.mkdtemp(prefix="synthfarm-bench-"))
    ways = {"disk": in_folder(disk)}
    if Path("/dev/shm").is_dir():
        shm = Path(tempfile.mkdtemp(prefix="synthfarm-bench-", dir="/dev/shm"))
        ways["shm"] = in_folder(shm)
    ways.update({"memfd": in_memfd(), "memfd-zips": in_memfd("ZIPS"), "memfd-rle": in_memfd("RLE")})
    if hasattr(sc.render.image_settings, "use_exr_interleave"):
        ways["memfd-interleaved"] = in_memfd(interleave=True)
    times: dict[str, list[float]] = {name: [] for name in ["render", *ways]}
    reference = None
    for rnd in range(args.rounds + 1):  # round 0 warms up
        names = list(ways)
        names = names[rnd % len(names):] + names[:rnd % len(names)]
        for name in names:
            start = time.perf_counter()
            bpy.ops.render.render()
            rendered = time.perf_counter()
            result = ways[name](sc)
            done = time.perf_counter()
            if rnd:
                times["render"].append(rendered - start)
                times[name].append(done - rendered)
            (depth, index, normals), png = result
            if reference is None:
                reference = result
            else:  # every way gives the same passes and PNG bytes
                assert np.array_equal(depth, reference[0][0]) and np.array_equal(index, reference[0][1])
                assert np.array_equal(normals, reference[0][2]) and png == reference[1], name
    render = statistics.median(times["render"])
    print(f"{args.size[0]}x{args.size[1]}, 1 sample, {args.rounds} rounds; median render call {render * 1e3:.1f} ms")
    print(f"{'way':<18} {'ms':>7} {'/ render':>9}")
    for name in ways:
        ms = statistics.median(times[name])
        print(f"{name:<18} {ms * 1e3:7.1f} {ms / render:9.2f}")
    shutil.rmtree(disk, ignore_errors=True)
    if "shm" in ways:
        shutil.rmtree(shm, ignore_errors=True)


if __name__ == "__main__":
    main()
