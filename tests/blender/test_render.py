"""One Cycles render gives every pass, oriented like the image; devices fall back to the CPU."""
import os
import struct

import bpy
import numpy as np
import pytest
from PIL import Image

from synthfarm.addon.core.dataset.native import png_without_text
from synthfarm.addon.core.exr import read_exr
from synthfarm.addon.engine import devices, render


@pytest.fixture()
def scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    scene.collection.objects.link(cam)
    scene.camera = cam
    cam.location, cam.rotation_euler = (0, -4, 0), (np.pi / 2, 0, 0)  # looks along +y, z is up in the image
    for name, loc, index in (("high", (0, 0, 0.8), 7), ("low", (0, 0, -0.8), 3)):
        bpy.ops.mesh.primitive_cube_add(size=0.6, location=loc)
        bpy.context.active_object.name = name
        bpy.context.active_object.pass_index = index
    scene.cycles.filter_width = 3.0  # a user's wide filter is capped: it would blur the index pass at edges
    render.configure(scene, resolution=(64, 48), samples=2, device=devices.select_device(scene, "cpu"))
    return scene


def test_passes_are_exact_and_top_row_first(scene, tmp_path):
    with render.PassFiles(tmp_path) as files:
        passes = render.render_frame(scene, files)
    assert passes.index.shape == (48, 64) and passes.index.dtype == np.int32
    assert set(np.unique(passes.index)) == {0, 3, 7}
    rows_high = np.nonzero(passes.index == 7)[0]
    rows_low = np.nonzero(passes.index == 3)[0]
    assert rows_high.max() < rows_low.min()  # the upper cube is in the upper rows
    # the cubes' front faces are 4 - 0.3 = 3.7 m away (planar depth) and face -y; their other visible
    # faces (the upper cube's bottom, the lower cube's top) are further away
    front = np.isclose(passes.normals[..., 1], -1, atol=1e-3) & (passes.index > 0)
    assert front.sum() > 100 and np.allclose(passes.depth[front], 3.7, atol=1e-3)
    assert (passes.depth[passes.index > 0] >= 3.7 - 1e-3).all()
    assert np.isinf(passes.depth[passes.index == 0]).all()
    # normals are averaged over samples (edge pixels mix surfaces), then renormalised; none hit -> 0
    assert (passes.normals[0, 0] == 0).all()
    length = np.linalg.norm(passes.normals, axis=-1)
    assert np.allclose(length[length > 0], 1, atol=1e-5)
    assert passes.render_seconds > 0
    assert scene.cycles.filter_width <= render.MAX_FILTER_WIDTH


def test_png_opens_in_standard_readers(scene, tmp_path):
    with render.PassFiles(tmp_path) as files:
        render.render_frame(scene, files)
        data = files.png_bytes()
    (tmp_path / "rgb.png").write_bytes(data)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert (width, height, depth, colour) == (64, 48, 8, 2)  # 8-bit RGB
    assert b"tEXt" not in data and b"tIME" not in data  # no date or render times: same render, same bytes
    with Image.open(tmp_path / "rgb.png") as image:
        assert image.mode == "RGB" and image.size == (64, 48)
        assert np.asarray(image).std() > 0  # not blank


def old_way(scene, folder):
    """The passes and PNG as synthfarm read them before issue 13: a multi-part EXR and a PNG in a folder."""
    image, settings = bpy.data.images["Render Result"], scene.render.image_settings
    settings.media_type, settings.file_format = "MULTI_LAYER_IMAGE", "OPEN_EXR_MULTILAYER"
    settings.color_depth, settings.exr_codec, settings.use_exr_interleave = "32", "NONE", False
    image.save_render(str(folder / "old.exr"), scene=scene)
    settings.media_type, settings.file_format, settings.color_mode = "IMAGE", "PNG", "RGB"
    settings.color_depth, settings.compression = "8", 15
    image.save_render(str(folder / "old.png"), scene=scene)
    channels = read_exr(folder / "old.exr")
    pick = {suffix: next(v for k, v in channels.items() if k.endswith(suffix))
            for suffix in (".Depth.Z", ".Object Index.X", ".Normal.X", ".Normal.Y", ".Normal.Z")}
    return pick, png_without_text((folder / "old.png").read_bytes())


@pytest.mark.parametrize("memory", [True, False], ids=["memory files", "scratch folder"])
def test_passes_come_back_through_memory_files_identical_to_the_old_way(scene, tmp_path, monkeypatch, memory):
    """Depth and ids bit-exact, the PNG byte-identical, whether the system has memory files or not; with them
    nothing is written to any folder."""
    if not memory:  # a system without memfd_create
        monkeypatch.delattr(os, "memfd_create")
    scratch = tmp_path / "scratch"
    with render.PassFiles(scratch) as files:
        assert files.in_memory == memory
        passes = render.render_frame(scene, files)
        png = files.png_bytes()
        old, old_png = old_way(scene, tmp_path)
        assert (list(scratch.iterdir()) == [files.png]) if not memory else not scratch.exists()
    assert png == old_png
    depth = old[".Depth.Z"].copy()
    depth[depth >= render.BACKGROUND_DEPTH] = np.inf
    assert passes.depth.tobytes() == depth.tobytes()
    assert np.array_equal(passes.index, np.rint(old[".Object Index.X"]).astype(np.int32))
    normals = np.stack([old[f".Normal.{a}"] for a in "XYZ"], axis=-1)
    length = np.linalg.norm(normals, axis=-1, keepdims=True)
    assert passes.normals.tobytes() == np.divide(normals, length, out=np.zeros_like(normals),
                                                 where=length > 1e-8).tobytes()
    assert set(np.unique(passes.index)) == {0, 3, 7}


def test_gpu_request_falls_back_to_cpu_and_says_so(scene, caplog):
    info = devices.select_device(scene, "gpu")
    if info.kind == "CPU":  # this machine has no GPU: the request must not fail, and CPU is recorded
        assert scene.cycles.device == "CPU" and "no GPU found" in caplog.text
    else:  # a GPU machine: it is used and named
        assert scene.cycles.device == "GPU" and info.names
    assert devices.select_device(scene, "cpu").kind == "CPU"
    with pytest.raises(ValueError, match="auto, cpu, gpu or current"):
        devices.select_device(scene, "tpu")
