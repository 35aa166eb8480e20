"""Scene-aware placement: exact collision tests against everything in the scene, scatter on the upward
faces of real meshes, shortfalls, randomized physics. Overlaps are checked with Blender's own
BVHTree.FromObject, not with the placement's triangles."""
import bpy
import numpy as np
import pytest

from synthfarm.addon.engine.randomizers import RandomizerError

from scene_build import bounds as _bounds, build, overlapping_pairs as _overlapping_pairs  # noqa: F401


def test_two_scatters_on_one_table_never_overlap(build):
    made, _, _, sampler = build({
        "generators": [{"name": "table", "kind": "primitive", "shape": "cube", "size": [0.8, 0.8, 0.7]},
                       {"name": "cans", "kind": "primitive", "shape": "cylinder", "count": 10, "size": [0.1, 0.1, 0.2],
                        "class": "can"},
                       {"name": "cups", "kind": "primitive", "shape": "torus", "count": 10, "size": [0.12, 0.12, 0.05],
                        "class": "cup"}],
        "randomizers": [{"kind": "scatter_on_surface", "targets": ["cans"], "surface": "table", "gap": 0.0},
                        {"kind": "scatter_on_surface", "name": "more", "targets": ["cups"], "surface": "table",
                         "gap": 0.0}]})
    placed = [o for o in made["cans"] + made["cups"] if not o.hide_render]
    assert len(placed) == 20
    assert _overlapping_pairs(placed + made["table"]) == []
    for obj in placed:
        lo, hi = _bounds(obj)
        assert lo[2] == pytest.approx(0.7, abs=1e-3) and (-0.4 <= lo[:2]).all() and (hi[:2] <= 0.4).all()
    assert sampler.log["randomizers/more"]["placed"] == 10 and sampler.log["randomizers/more"]["requested"] == 10


def _shelf(name="shelf"):
    """Two boards, at z 0.3 and 0.8, over x in [-0.5, 0.5] (the upper one only over x > 0)."""
    verts, faces = [], []
    for x0, x1, z in ((-0.5, 0.5, 0.3), (0.0, 0.5, 0.8)):
        base = len(verts)
        for dz in (-0.02, 0.0):
            verts += [(x0, -0.2, z + dz), (x1, -0.2, z + dz), (x1, 0.2, z + dz), (x0, 0.2, z + dz)]
        faces += [tuple(base + i for i in f) for f in ((0, 3, 2, 1), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5),
                                                   (2, 3, 7, 6), (3, 0, 4, 7))]
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(verts, [], [tuple(f) for f in faces])
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def test_scatter_on_the_upward_faces_of_a_shelf_and_around_a_base_scene_object(build):
    _shelf()
    # an object of the base scene (not in the recipe) stands on the lower board
    bpy.ops.mesh.primitive_cube_add(size=0.15, location=(-0.3, 0.0, 0.3 + 0.075 + 1e-4))
    vase = bpy.context.active_object
    made, *_ = build({
        "generators": [{"name": "shelf", "kind": "scene", "objects": ["shelf"]},
                       {"name": "box", "kind": "primitive", "shape": "cube", "count": 12, "size": 0.06, "class": "b"}],
        "randomizers": [{"kind": "scatter_on_surface", "targets": ["box"], "surface": "shelf", "gap": 0.0}]})
    placed = [o for o in made["box"] if not o.hide_render]
    assert len(placed) == 12
    heights = sorted(round(float(_bounds(o)[0][2]), 3) for o in placed)
    assert set(heights) <= {0.3, 0.8} and {0.3, 0.8} <= set(heights)  # both boards, resting on them
    for obj in placed:
        lo, hi = _bounds(obj)
        if lo[2] > 0.5:
            assert lo[0] >= -1e-6  # the upper board only reaches over x >= 0: nothing hangs in the air
        assert -0.5 - 1e-6 <= lo[0] and hi[0] <= 0.5 + 1e-6 and -0.2 <= lo[1] and hi[1] <= 0.2
    assert _overlapping_pairs(placed + [vase, bpy.data.objects["shelf"]]) == []


def test_sloped_table_with_objects_standing_along_the_normal(build):
    bpy.ops.mesh.primitive_plane_add(size=2.0)
    slope = bpy.context.active_object
    slope.name = "slope"
    slope.rotation_euler = (0.3, 0.0, 0.0)  # about 17 degrees
    made, *_ = build({
        "generators": [{"name": "slope", "kind": "scene", "objects": ["slope"]},
                       {"name": "box", "kind": "primitive", "shape": "cube", "count": 8, "size": 0.1, "class": "b"}],
        "randomizers": [{"kind": "scatter_on_surface", "targets": ["box"], "surface": "slope", "align_to_normal": True,
                         "yaw": True, "max_slope": 20}]})
    normal = np.array(slope.matrix_world.to_3x3() @ bpy.data.objects["slope"].data.polygons[0].normal)
    for obj in made["box"]:
        assert not obj.hide_render
        m = np.array(obj.matrix_world)
        up = m[:3, 2] / np.linalg.norm(m[:3, 2])
        assert np.dot(up, normal) == pytest.approx(1.0, abs=1e-6)
        corners = np.array([m[:3, :3] @ np.array(c) + m[:3, 3] for c in obj.bound_box])
        heights = corners @ normal  # the plane passes through the origin
        assert heights.min() == pytest.approx(0.0, abs=1e-3)
    assert _overlapping_pairs(made["box"] + [slope]) == []


def test_pose_in_volume_avoids_the_container_and_each_other(build):
    made, *_ = build({
        "generators": [{"name": "box", "kind": "asset", "source": "../toybox/bin.obj"},
                       {"name": "t", "kind": "primitive", "shape": "monkey", "count": 15, "size": 0.15, "class": "m"}],
        "randomizers": [{"kind": "pose_in_volume", "targets": ["t"], "avoid_collisions": True,
                         "position": {"uniform": [[-0.3, -0.2, 0], [0.3, 0.2, 0.3]]}}]})
    placed = [o for o in made["t"] if not o.hide_render]
    assert len(placed) >= 12
    assert _overlapping_pairs(placed + made["box"]) == []


def test_shortfall_is_recorded_or_an_error(build):
    spec = {"generators": [{"name": "table", "kind": "primitive", "shape": "cube", "size": [0.3, 0.3, 0.5]},
                           {"name": "big", "kind": "primitive", "shape": "cube", "count": 6, "size": 0.14}],
            "randomizers": [{"kind": "scatter_on_surface", "targets": ["big"], "surface": "table", "max_tries": 40}]}
    made, _, _, sampler = build(spec)
    log = sampler.log["randomizers/scatter_on_surface"]
    hidden = [o for o in made["big"] if o.hide_render]
    assert 0 < log["placed"] < 6 and log["requested"] == 6 and len(hidden) == 6 - log["placed"]
    assert all(log["position"][o.name] is None for o in hidden)
    spec["randomizers"][0]["on_shortfall"] = "error"
    with pytest.raises(RandomizerError, match=r"randomizers.scatter_on_surface: no free place .* of 6 placed"):
        build(spec)


def test_randomized_physics_properties_are_drawn_and_logged(build):
    made, _, _, sampler = build({
        "generators": [{"name": "toys", "kind": "primitive", "shape": "sphere", "count": 4, "size": 0.1}],
        "randomizers": [{"kind": "physics_drop", "targets": ["toys"], "seconds": 0.5, "mass": {"uniform": [0.1, 2]},
                         "friction": {"uniform": [0.2, 0.9]}, "restitution": 0.75}]})
    log = sampler.log["randomizers/physics_drop"]
    assert set(log["mass"]) == {o.name for o in made["toys"]} and len(set(log["mass"].values())) == 4
    assert all(0.2 <= v <= 0.9 for v in log["friction"].values())
    assert set(log["restitution"].values()) == {0.75}
