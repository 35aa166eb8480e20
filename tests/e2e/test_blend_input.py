"""A saved .blend with a recipe on its scene is a job input everywhere a recipe file is: the CLI's
render (embedded farm), validate and submit to a coordinator with a remote-style worker."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests/data/tiny.yaml"

MAKE = """
import sys, bpy
import synthfarm
from synthfarm.addon.core.recipe import load_recipe
from synthfarm.addon.ui import props
bpy.ops.wm.read_factory_settings(use_empty=False)
props.ensure_registered()
with_recipe = sys.argv[3] == "yes"
if with_recipe:
    props.store_recipe(bpy.context.scene.synthfarm, load_recipe(sys.argv[1]))
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
    return subprocess.run([sys.executable, "-m", "synthfarm.farm.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def test_render_and_validate_a_blend(tmp_path):
    blend = make_blend(tmp_path / "scene.blend")
    ok = synthfarm("validate", blend)
    assert ok.returncode == 0 and "valid recipe 'tiny'" in ok.stdout, ok.stderr[-2000:]
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


def test_submit_a_blend_to_a_farm(tmp_path):
    import time

    from synthfarm.farm.embedded import EmbeddedFarm

    blend = make_blend(tmp_path / "scene.blend")
    with EmbeddedFarm(tmp_path / "farm", workers=1, device="cpu") as farm:
        run = synthfarm("submit", blend, "--jobs", 2, "--preview", "--out", tmp_path / "out",
                        "--connect", farm.coordinator.clients_endpoint)
        assert run.returncode == 0, run.stderr[-3000:]
        assert "uploaded" in run.stderr  # inputs travel by hash: the worker does not read the user's folder
        batch = run.stdout.strip().splitlines()[-1]
        deadline = time.monotonic() + 60
        while True:
            jobs = farm.client.status(batch)["jobs"]
            if jobs["queued"] == 0 and jobs["running"] == 0:
                break
            assert time.monotonic() < deadline, jobs
            time.sleep(0.3)
    assert jobs["done"] == 2, jobs
    classes = {o["class"] for a in (tmp_path / "out" / "annotations").glob("*.json")
               for o in json.loads(a.read_text())["objects"]}
    assert "user_box" in classes
