"""What a job costs besides its render (issue 13: at the preview tier the scene build is most of a frame's non-render
time). A bpy operator costs ~2 ms whatever it does (two depsgraph updates around it), so the build calls them a fixed
number of times, not once per object; what does not change between jobs is made once."""
from pathlib import Path

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


def test_what_does_not_change_between_jobs_is_made_once(tmp_path, monkeypatch):
    """The recipe's hash (in every frame's metadata) and the render's memory files: once per runner, whatever the
    number of jobs."""
    import synthfarm
    from synthfarm.addon.core.recipe import Recipe
    from synthfarm.addon.engine import render
    from synthfarm.addon.engine.runner import Runner

    counts = {"hash": 0, "files": 0}
    hash_, files = Recipe.hash, render.PassFiles.__init__

    def counting_hash(self):
        counts["hash"] += 1
        return hash_(self)

    def counting_files(self, *args):
        counts["files"] += 1
        files(self, *args)

    monkeypatch.setattr(Recipe, "hash", counting_hash)
    monkeypatch.setattr(render.PassFiles, "__init__", counting_files)
    tiny = Path(__file__).resolve().parents[1] / "data" / "tiny.yaml"
    seen = []
    for jobs in (1, 4):
        counts.update(hash=0, files=0)
        runner = Runner()
        synthfarm.render(tiny, jobs=jobs, out=tmp_path / str(jobs), progress=False, runner=runner)
        runner.release()
        seen.append(dict(counts))
    assert seen[0] == seen[1] and seen[0]["files"] == 1, seen
