"""Ground truth checked against Blender itself: renders, its own projection, and analytic cases."""
import math
from pathlib import Path

import bpy
import numpy as np
import pytest
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector

from synthfarm.addon.engine import devices, render
from synthfarm.addon.core.dataset.models import mesh_of, model_key
from synthfarm.addon.core.groundtruth import Mesh
from synthfarm.addon.engine.labels import GeometryCache, frame_labels
from synthfarm.addon.engine.sensors import camera_record, intrinsics

W, H = 96, 72


def make_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    scene.collection.objects.link(cam)
    scene.camera = cam
    cam.location, cam.rotation_euler = (0, -5, 0), (math.pi / 2, 0, 0)  # looks along +y
    render.configure(scene, resolution=(W, H), samples=1, device=devices.select_device(scene, "cpu"))
    return scene


def add(shape, name, location, size=0.6, rotation=(0, 0, 0)):
    if shape == "square":  # a flat square facing the camera
        bpy.ops.mesh.primitive_plane_add(size=size, location=location, rotation=(math.pi / 2, 0, 0))
    elif shape == "monkey":
        bpy.ops.mesh.primitive_monkey_add(size=size, location=location, rotation=rotation)
    else:
        bpy.ops.mesh.primitive_cube_add(size=size, location=location, rotation=rotation)
    obj = bpy.context.active_object
    obj.name = name
    obj["synthfarm_class"] = name.split(".")[0]
    return obj


def labels(scene, objects, tmp_path):
    for i, obj in enumerate(objects, start=1):
        obj.pass_index = i
    bpy.context.view_layer.update()
    with render.PassFiles(tmp_path) as files:
        passes = render.render_frame(scene, files)
    info = camera_record(scene.camera, scene)
    classes = {c: i for i, c in enumerate(sorted({o["synthfarm_class"] for o in objects}), start=1)}
    return frame_labels(scene, objects, passes.index, np.array(info["K"]), np.array(info["world_to_cam"]),
                        classes, GeometryCache()), passes, info


def test_unoccluded_object_amodal_equals_visible(tmp_path):
    scene = make_scene()
    monkey = add("monkey", "monkey", (0.3, 0, 0.2), size=1.0, rotation=(0.3, 0.2, 2.5))
    (record,), _, _ = labels(scene, [monkey], tmp_path)
    assert record["visibility"] == pytest.approx(1.0, abs=0.01)
    assert record["truncation"] == 0.0
    assert np.allclose(record["amodal_bbox"], record["bbox"], atol=1.0)
    assert abs(record["amodal_pixels"] - record["visible_pixels"]) <= 0.01 * record["visible_pixels"]


def test_occluder_visibility_matches_a_render_of_the_object_alone(tmp_path):
    scene = make_scene()
    target = add("cube", "target", (0, 0, 0), size=1.0, rotation=(0.4, 0.3, 0.6))
    blocker = add("cube", "blocker", (0.45, -1.5, 0.2), size=0.5)
    records, _, _ = labels(scene, [target, blocker], tmp_path)
    ours = records[0]["visibility"]
    blocker.hide_render = True  # the reference: the object rendered alone
    alone, _, _ = labels(scene, [target], tmp_path)
    reference = records[0]["visible_pixels"] / alone[0]["visible_pixels"]
    assert 0.2 < reference < 0.95  # the occluder really hides part of it
    assert ours == pytest.approx(reference, abs=0.02)
    blocker.hide_render = False
    blocker.location = (0, -1.5, 0)
    blocker.scale = (4, 4, 4)  # now it hides the target completely
    records, _, _ = labels(scene, [target, blocker], tmp_path)
    assert records[0]["visible_pixels"] == 0 and records[0]["bbox"] is None and records[0]["visibility"] == 0


@pytest.mark.parametrize("border,offset", [("left", (-1, 0)), ("right", (1, 0)), ("top", (0, 1)), ("bottom", (0, -1))])
def test_truncation_at_each_border(tmp_path, border, offset):
    scene = make_scene()
    K = intrinsics(scene.camera, scene)
    # a square facing the camera, its centre on the image border: half of it is cut off
    half_w, half_h = W / 2 / K[0, 0] * 5, H / 2 / K[1, 1] * 5  # metres from the centre to the border at y=0
    location = (offset[0] * half_w, 0, offset[1] * half_h)
    (record,), _, _ = labels(scene, [add("square", "square", location, size=0.8)], tmp_path)
    assert record["truncation"] == pytest.approx(0.5, abs=0.03), border
    assert record["visibility"] == pytest.approx(1.0, abs=0.02)
    x, y, w, h = record["amodal_bbox_unclipped"]
    inside = {"left": x < 0, "right": x + w > W, "top": y < 0, "bottom": y + h > H}
    assert inside[border]


def test_pose_reprojects_the_box_and_agrees_with_blender(tmp_path):
    scene = make_scene()
    obj = add("cube", "box", (0.2, 0.5, -0.1), size=0.7, rotation=(0.5, -0.4, 1.1))
    obj.scale = (1.0, 0.5, 1.5)
    (record,), _, info = labels(scene, [obj], tmp_path)
    K = np.array(info["K"])
    R, t = np.array(record["pose"]["R"]), np.array(record["pose"]["t"])
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-6) and np.linalg.det(R) == pytest.approx(1)
    corners = np.array(record["box3d"]["object"]) @ R.T + t
    uv = corners @ K.T
    assert np.allclose(uv[:, :2] / uv[:, 2:], record["box3d"]["image"], atol=0.5)
    assert record["size"] == pytest.approx([0.7, 0.35, 1.05], abs=1e-5)
    for corner, pixel in zip(obj.bound_box, record["box3d"]["image"]):  # Blender's own projection
        ndc = world_to_camera_view(scene, scene.camera, obj.matrix_world @ Vector(corner))
        assert (ndc.x * W, (1 - ndc.y) * H) == pytest.approx(tuple(pixel), abs=0.5)
    assert record["distance"] == pytest.approx((Vector((0.2, 0.5, -0.1)) - scene.camera.location).length, abs=1e-4)


@pytest.mark.parametrize("fit", ["AUTO", "HORIZONTAL", "VERTICAL"])
@pytest.mark.parametrize("aspect,shift,size", [((1, 1), (0, 0), (96, 72)), ((2, 1), (0.1, -0.05), (96, 72)),
                                               ((1, 1.5), (-0.2, 0.1), (60, 90))])
def test_intrinsics_agree_with_blender_projection(fit, aspect, shift, size):
    scene = make_scene()
    cam = scene.camera.data
    cam.sensor_fit, cam.shift_x, cam.shift_y = fit, *shift
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.pixel_aspect_x, scene.render.pixel_aspect_y = aspect
    bpy.context.view_layer.update()
    info = camera_record(scene.camera, scene)
    K, w2c = np.array(info["K"]), np.array(info["world_to_cam"])
    rng = np.random.default_rng(0)
    for point in rng.uniform([-1, -1, -1], [1, 2, 1], size=(20, 3)):
        ndc = world_to_camera_view(scene, scene.camera, Vector(point))
        cam_point = w2c[:3, :3] @ point + w2c[:3, 3]
        u, v, w = K @ cam_point
        assert (u / w, v / w) == pytest.approx((ndc.x * size[0], (1 - ndc.y) * size[1]), abs=1e-3)


def test_keypoints_from_empties_and_vertex_groups(tmp_path):
    scene = make_scene()
    obj = add("cube", "box", (0, 0, 0), size=1.0)
    group = obj.vertex_groups.new(name="kp:front")  # the face towards the camera (-y)
    group.add([v.index for v in obj.data.vertices if v.co.y < 0], 1.0, "REPLACE")
    for name, location in (("kp:back", (0, 0.5, 0)), ("kp:far", (30, 0, 0))):
        empty = bpy.data.objects.new(name, None)
        scene.collection.objects.link(empty)
        empty.parent, empty.location = obj, location
    (record,), passes, info = labels(scene, [obj], tmp_path)
    assert "keypoints" not in record  # labels() passes no depth: no keypoint visibility without it
    records = frame_labels(scene, [obj], passes.index, np.array(info["K"]), np.array(info["world_to_cam"]),
                           {"box": 1}, GeometryCache(), passes.depth)
    points = {k["name"]: k for k in records[0]["keypoints"]}
    assert (points["front"]["v"], points["back"]["v"], points["far"]["v"]) == (2, 1, 0)
    assert (points["front"]["x"], points["front"]["y"]) == pytest.approx((W / 2, H / 2), abs=1e-3)


def test_geometry_labels_are_those_of_every_corner_moved_alone(monkeypatch):
    """frame_labels moves and projects a mesh's vertices once each, not every corner of every triangle: the labels are
    bit-identical to the old code's (tests/support/labels_before.py) on the world triangles it made, every corner
    by the object's matrix, for real meshes: shared vertices, a modifier, copies sharing a mesh, objects cut by the
    border, behind the camera and through the near plane; and each model is the one of the object's scale as it
    worked it out, one object at a time."""
    import json

    import labels_before

    scene = make_scene()
    objects = [add("monkey", "monkey", (0.3, 0, 0.2), size=1.0, rotation=(0.3, 0.2, 2.5)),
               add("cube", "cube", (1.6, 1, -0.9), size=1.2, rotation=(0.5, 0.1, 0.7)),  # cut by the border
               add("monkey", "far", (-0.4, 30, 0.5), size=2.0), add("cube", "behind", (0, -8, 0)),
               add("monkey", "near", (0.1, -4.95, 0.05), size=0.5)]  # through the near plane
    objects[1].scale = (1.5, 0.7, 1.1)
    objects[0].modifiers.new("subdivide", "SUBSURF").levels = 1
    copy = objects[2].copy()  # shares the mesh
    copy.name, copy.location = "copy", (-1.2, 2, -0.3)
    scene.collection.objects.link(copy)
    objects.append(copy)
    scene.camera.data.clip_start = 0.1
    bpy.context.view_layer.update()
    info = camera_record(scene.camera, scene)
    K, world_to_cam = np.array(info["K"]), np.array(info["world_to_cam"])
    from synthfarm.addon.engine import labels as labels_module

    scales = []  # each model's scale as it is worked out
    real = labels_module.mesh_of
    monkeypatch.setattr(labels_module, "mesh_of", lambda triangles, scale: scales.append(scale) or real(triangles, scale))
    records = frame_labels(scene, objects, np.zeros((H, W), dtype=np.int32), K, world_to_cam,
                           {name: 1 for name in ("monkey", "cube", "far", "behind", "near", "copy")}, GeometryCache())
    # rounded in the type of Blender's matrices (float32), as one object's own scale was
    expected = {np.round(np.linalg.norm(np.array(obj.matrix_world)[:3, :3], axis=0), 6).astype(float).tobytes()
                for obj in objects}
    assert {np.asarray(scale, dtype=float).tobytes() for scale in scales} == expected
    depsgraph = bpy.context.evaluated_depsgraph_get()
    old_input, locals_ = [], []
    for obj in objects:
        mesh = obj.evaluated_get(depsgraph).to_mesh()
        mesh.calc_loop_triangles()
        coords = np.array([v.co[:] for v in mesh.vertices], dtype=np.float64)
        local = coords[np.array([t.vertices[:] for t in mesh.loop_triangles])]
        obj.evaluated_get(depsgraph).to_mesh_clear()
        matrix = np.array(obj.matrix_world)
        world = local.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]
        bounds = np.array([c[:] for c in obj.bound_box])
        old_input.append((world.reshape(-1, 3, 3), matrix, bounds.min(axis=0), bounds.max(axis=0)))
        locals_.append(local)
    old = labels_before.geometry_labels_many(K, world_to_cam, (W, H), old_input, 0.1)
    assert len(records[0]["amodal_segmentation"]["counts"]) > 10 and 0 < records[1]["truncation"] < 1
    assert records[3]["amodal_pixels"] == 0 and records[4]["amodal_pixels"] > 0
    for record, labels, local, (_, matrix, _, _) in zip(records, old, locals_, old_input):
        assert json.dumps({key: record[key] for key in labels}, allow_nan=False) == json.dumps(labels, allow_nan=False)
        # each object's model as it was worked out alone: its triangles at its scale (float32 as the matrix), rounded
        scale = np.round(np.linalg.norm(matrix[:3, :3], axis=0), 6)
        assert record["model"] == model_key(mesh_of(local, scale)[0])


def test_models_are_kept_across_jobs_by_content(monkeypatch):
    """A model is worked out once for as long as the cache lives: a new job's copy of an asset (another mesh, the same
    triangles) meets it again after the job's meshes are forgotten; release() and the memory bound forget it."""
    from synthfarm.addon.engine import labels as labels_module

    made = []
    real = labels_module.mesh_of
    monkeypatch.setattr(labels_module, "mesh_of", lambda *a: made.append(1) or real(*a))
    make_scene()
    depsgraph = bpy.context.evaluated_depsgraph_get()
    cache, scale = GeometryCache(), np.ones(3)

    def job(name):  # a job makes its own copy of the asset: a new mesh
        obj = add("monkey", name, (0, 0, 0))
        return cache.model_keys([cache.local_mesh(obj, depsgraph)], [scale])[0]

    key = job("first")
    assert len(made) == 1 and key in cache.models
    cache.clear()  # the job ends
    assert job("second") == key and len(made) == 1, "the second job's copy was worked out again"
    second = cache.local_mesh(bpy.data.objects["second"], depsgraph)
    assert "triangles" not in vars(second), "a known model was matched on its triangles (gathered per object)"
    compared = []
    real_equal = np.array_equal
    monkeypatch.setattr(np, "array_equal", lambda *a: compared.append(1) or real_equal(*a))
    assert cache.model_keys([second] * 3, [scale] * 3) == [key] * 3
    assert not compared, "the job's copies of a matched mesh were compared again (not matched as they are)"
    monkeypatch.setattr(np, "array_equal", real_equal)
    # the same triangles with their corners as vertices of their own: another mesh, the same model
    assert cache.model_keys([Mesh.of_triangles(second.triangles)], [scale])[0] == key and len(made) == 2
    assert cache.model_keys([cache.local_mesh(bpy.data.objects["second"], depsgraph)], [scale * 2])[0] != key
    assert len(made) == 3  # another scale is another model
    cache.release()
    assert not cache.models and job("third") == key and len(made) == 4
    monkeypatch.setattr(labels_module, "MODELS_KEPT_BYTES", 1)
    cache.clear()
    assert not cache.models and job("fourth") == key and len(made) == 5


def test_meshes_are_read_as_their_loop_triangles():
    """A mesh's triangles as the labels read them (a mesh of triangles only: its corners' vertices as they are) are
    its loop triangles, corner by corner: triangulated primitives, faces given in any order and from any corner, a
    mesh with quads, and meshes evaluated through modifiers."""
    make_scene()
    objects = []
    for k, shape in enumerate(("monkey", "cube", "square", "monkey")):
        obj = add(shape, f"{shape}.{k}", (k, 0, 0))
        if k % 2:
            modifier = obj.modifiers.new("triangulate", "TRIANGULATE")
            if k == 1:
                bpy.ops.object.modifier_apply(modifier=modifier.name)  # a cube of triangles
        objects.append(obj)
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, size=(40, 3))
    faces = [list(np.roll(rng.choice(40, 3, replace=False), int(rng.integers(0, 3)))) for _ in range(60)]
    mesh = bpy.data.meshes.new("triangles")
    mesh.from_pydata(points.tolist(), [], [[int(v) for v in f] for f in faces])
    objects.append(bpy.data.objects.new("triangles", mesh))
    bpy.context.scene.collection.objects.link(objects[-1])
    subdivided = add("cube", "subdivided", (0, 2, 0))
    subdivided.modifiers.new("subdivision", "SUBSURF")
    subdivided.modifiers.new("triangulate", "TRIANGULATE")
    objects.append(subdivided)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    cache = GeometryCache()
    only_triangles = 0
    for obj in objects:
        evaluated = obj.evaluated_get(depsgraph)
        expected = evaluated.to_mesh()
        expected.calc_loop_triangles()
        corners = np.array([t.vertices[:] for t in expected.loop_triangles], dtype=np.int64)
        vertices = np.array([v.co[:] for v in expected.vertices], dtype=np.float32).astype(np.float64)
        only_triangles += len(expected.loops) == 3 * len(expected.polygons)
        evaluated.to_mesh_clear()
        local = cache.local_mesh(obj, depsgraph)
        assert local.corners.dtype == np.int64 and np.array_equal(local.corners, corners), obj.name
        assert np.array_equal(local.vertices, vertices), obj.name
    assert only_triangles == 4  # cube.1 (applied), monkey.3 (a modifier), the triangles, the subdivided cube


def test_an_in_process_render_keeps_freed_memory(monkeypatch, tmp_path):
    """synthfarm.render (this process is ours) sets glibc to keep freed memory for the labels' arrays (core/heap.py;
    the effect itself: tests/unit/test_heap.py); the add-on's Render Locally (LocalBatch) does not."""
    import synthfarm
    from synthfarm.addon.engine import api

    calls = []
    monkeypatch.setattr(api, "keep_freed_memory", lambda: calls.append("render") or True)
    tiny = Path(__file__).resolve().parents[1] / "data" / "tiny.yaml"
    summary = synthfarm.render(tiny, jobs=1, out=tmp_path / "out", progress=False)
    assert summary.jobs_rendered == 1 and calls == ["render"]
    batch = api.LocalBatch(tiny, 1, tmp_path / "local")
    try:
        assert batch.step() is True and calls == ["render"]
    finally:
        batch.close()
