"""One Cycles render gives every pass, oriented like the image; devices fall back to the CPU."""
import struct

import bpy
import numpy as np
import pytest
from PIL import Image

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
    passes = render.render_frame(scene, tmp_path / "rgb.png", tmp_path)
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
    assert passes.render_seconds > 0 and not (tmp_path / "passes.exr").exists()
    assert scene.cycles.filter_width <= render.MAX_FILTER_WIDTH


def test_png_opens_in_standard_readers(scene, tmp_path):
    render.render_frame(scene, tmp_path / "rgb.png", tmp_path)
    data = (tmp_path / "rgb.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert (width, height, depth, colour) == (64, 48, 8, 2)  # 8-bit RGB
    with Image.open(tmp_path / "rgb.png") as image:
        assert image.mode == "RGB" and image.size == (64, 48)
        assert np.asarray(image).std() > 0  # not blank


def test_gpu_request_falls_back_to_cpu_and_says_so(scene, caplog):
    info = devices.select_device(scene, "gpu")
    if info.kind == "CPU":  # this machine has no GPU: the request must not fail, and CPU is recorded
        assert scene.cycles.device == "CPU" and "no GPU found" in caplog.text
    else:  # a GPU machine: it is used and named
        assert scene.cycles.device == "GPU" and info.names
    assert devices.select_device(scene, "cpu").kind == "CPU"
    with pytest.raises(ValueError, match="auto, cpu, gpu or current"):
        devices.select_device(scene, "tpu")
