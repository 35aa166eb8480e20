"""A saved .blend with a recipe on its scene is a job input everywhere a recipe file is: the CLI's
render (embedded farm), validate and submit to a coordinator with a remote-style worker."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from farm_procs import Farm, check_dataset

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests/data/tiny.yaml"

MAKE = """
import sys, bpy
import synthfarm
from synthfarm.addon.core.recipe import load_recipe
from synthfarm.addon import storage
bpy.ops.wm.read_factory_settings(use_empty=False)
storage.ensure_registered()
with_recipe = sys.argv[3] == "yes"
if with_recipe:
    storage.store_recipe(bpy.context.scene.synthfarm, load_recipe(sys.argv[1]))
    bpy.context.scene.synthfarm.base_dir = str(__import__("pathlib").Path(sys.argv[1]).parent)
cube = bpy.data.objects["Cube"]
cube["synthfarm_class"] = "user_box"
cube.scale = (0.15, 0.15, 0.15)
cube.location = (-0.3, -0.2, 0.15)
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[2])
"""


def make_blend(path: Path, with_recipe: bool = True) -> Path:
    run = subprocess.run([sys.executable, "-c", MAKE, str(TINY), str(path), "yes" if with_recipe else "no"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return path


def synthfarm(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "synthfarm.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def test_render_and_validate_a_blend(tmp_path):
    blend = make_blend(tmp_path / "scene.blend")
    ok = synthfarm("validate", blend)
    assert ok.returncode == 0 and "valid recipe 'tiny'" in ok.stdout, ok.stderr[-2000:]
    knobs = synthfarm("params", blend, "--json")
    assert json.loads(knobs.stdout) == {"radius": {"type": "float", "default": 2.0,  # Blender's chatter: stderr
                                                   "options": {"min": 1.0, "max": 5.0}, "description": ""}}
    run = synthfarm("render", blend, "--jobs", 2, "--out", tmp_path / "ds")
    assert run.returncode == 0, run.stderr[-3000:]
    annotations = sorted((tmp_path / "ds" / "annotations").glob("*.json"))
    assert len(annotations) == 2
    classes = {o["class"] for a in annotations for o in json.loads(a.read_text())["objects"]}
    assert {"user_box", "box", "ball"} <= classes
    import yaml

    stored = yaml.safe_load((tmp_path / "ds" / "recipe.yaml").read_text())
    assert stored["scene"]["base"] == "scene.blend"  # paths are rebased to the .blend's folder


def test_a_blend_without_recipe_is_refused_with_the_fix(tmp_path):
    blend = make_blend(tmp_path / "plain.blend", with_recipe=False)
    run = synthfarm("validate", blend)
    assert run.returncode != 0
    assert "no synthfarm recipe" in run.stderr and "Synthfarm" in run.stderr and "Import Recipe" in run.stderr


def test_render_script_takes_a_blend_recipe(tmp_path):
    blend = make_blend(tmp_path / "scene.blend")
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "render.py"), str(blend), "--jobs", "1",
                          "--out", str(tmp_path / "ds")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    ann = json.loads((tmp_path / "ds" / "annotations" / "0000000000-0000-cam-ann.json").read_text())
    assert {o["class"] for o in ann["objects"]} == {"user_box", "box", "ball"}
    refused = subprocess.run([sys.executable, str(ROOT / "scripts" / "render.py"), "--blend", str(blend), "--recipe",
                              str(blend), "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "--blend is not used with a .blend recipe" in refused.stderr


def test_submit_a_blend_to_a_worker_elsewhere(tmp_path):
    """The .blend and what its recipe names travel by content hash: the worker, in a folder of its own, is
    started only once the user's folder is gone, and renders the user's object."""
    user = tmp_path / "user"
    user.mkdir()
    blend = make_blend(user / "scene.blend")
    farm = Farm(tmp_path, workers=0)
    try:
        run = synthfarm("submit", blend, "--jobs", 2, "--preview", "--batch-id", "batch", "--out", tmp_path / "out",
                        "--connect", f"tcp://127.0.0.1:{farm.port + 1}")
        assert run.returncode == 0, run.stderr[-3000:]
        assert "inputs: 1 files, 1 uploaded" in run.stderr  # the .blend (tiny names no other file)
        assert run.stdout == "batch\n"
        user.rename(tmp_path / "moved")  # nothing of the user's folder is left to read
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        farm.workers.append(farm.start_worker("remote", work_dir=elsewhere / "work", cwd=elsewhere))
        status = farm.wait(lambda s: s["jobs"]["queued"] == 0 and s["jobs"]["running"] == 0, timeout=120)
        assert status["jobs"]["done"] == 2, status
        check_dataset(tmp_path / "out", 2, 1)
        bundles = list((elsewhere / "work" / "bundles").glob("*/scene.blend"))
        assert len(bundles) == 1  # the worker's own copy, laid out from its blob cache
    finally:
        farm.stop()
    classes = {o["class"] for a in (tmp_path / "out" / "annotations").glob("*.json")
               for o in json.loads(a.read_text())["objects"]}
    assert {"user_box", "box", "ball"} <= classes
