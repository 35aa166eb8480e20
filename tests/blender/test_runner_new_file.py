"""A Runner kept across File > New or Open (a script's, the add-on's session runner) makes again what Blender freed."""
from pathlib import Path

import bpy

import synthfarm
from synthfarm.addon.engine.runner import Runner

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.yaml"


def test_a_runner_renders_again_after_a_new_file_freed_its_meshes(tmp_path):
    bpy.ops.wm.read_homefile(use_empty=True)
    runner = Runner(use_current_scene=True, device="cpu")
    synthfarm.render(TINY, jobs=1, out=tmp_path / "a", progress=False, runner=runner)
    assert runner.primitives.meshes  # kept for the next job
    bpy.ops.wm.read_homefile(use_empty=True)  # File > New frees every datablock, the runner's too
    summary = synthfarm.render(TINY, jobs=1, out=tmp_path / "b", progress=False, runner=runner)
    assert summary.jobs_rendered == 1 and summary.frames == 1  # it failed with "StructRNA of type Mesh has been removed"
