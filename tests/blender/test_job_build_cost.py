"""What a job's scene build costs in Blender calls (issue 13: at the preview tier the build is most of a frame's
non-render time). A bpy operator costs ~2 ms whatever it does (two depsgraph updates around it), so the build
calls them a fixed number of times, not once per object."""
import bpy
import pytest

from scene_build import build  # noqa: F401 - the fixture


@pytest.fixture
def rigidbody_calls(monkeypatch):
    """The names of the ``bpy.ops.rigidbody`` operators called, in order (the real operators run)."""
    calls = []
    real = bpy.ops.rigidbody

    class Counting:
        def __getattr__(self, name):
            operator = getattr(real, name)

            def call(*args, **kwargs):
                calls.append(name)
                return operator(*args, **kwargs)
            return call

    monkeypatch.setattr(bpy.ops, "rigidbody", Counting())
    return calls


@pytest.mark.parametrize("count", [2, 7])
def test_a_physics_drop_adds_and_removes_its_bodies_in_one_call_each(build, rigidbody_calls, count):
    made, *_ = build({
        "generators": [{"name": "box", "kind": "asset", "source": "../toybox/bin.obj"},
                       {"name": "toys", "kind": "asset_dir", "source": "../toys", "count": count}],
        "randomizers": [{"kind": "physics_drop", "targets": ["toys"], "into": "box", "seconds": 0.5,
                         "mass": {"uniform": [0.5, 2.0]}, "friction": {"uniform": [0.2, 0.9]}}]})
    assert rigidbody_calls == ["world_add", "objects_add", "objects_add", "objects_remove", "world_remove"]
    assert all(obj.rigid_body is None for obj in made["toys"] + made["box"])
    assert bpy.context.scene.rigidbody_world is None
