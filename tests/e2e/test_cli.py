"""The synthfarm command and the background script, as a user runs them (real processes)."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"
TOYBOX = ROOT / "assets" / "recipes" / "toybox.yaml"


def synthfarm(*args, **kw):
    return subprocess.run([sys.executable, "-m", "synthfarm.cli", *map(str, args)], capture_output=True,
                          text=True, **kw)


def test_help_answers():
    out = synthfarm("--help")
    assert out.returncode == 0 and "render" in out.stdout and "validate" in out.stdout
    out = synthfarm("render", "--help")
    assert "--jobs" in out.stdout and "--preview" in out.stdout and "resumed" in out.stdout


def test_validate_good_and_bad(tmp_path):
    assert synthfarm("validate", TOYBOX).returncode == 0
    bad = yaml.safe_load(TINY.read_text())
    bad["randomizers"][0]["radius"] = {"uniform": [1, -2]}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    out = synthfarm("validate", path)
    assert out.returncode == 1
    assert "randomizers[0].radius.uniform[1]: must be > 0" in out.stderr


def test_params_lists_the_knobs():
    out = synthfarm("params", TOYBOX, "--json")
    info = json.loads(out.stdout)
    assert info["num_toys"]["type"] == "int" and info["num_toys"]["options"] == {"min": 1, "max": 30}


def test_bad_set_names_the_parameter(tmp_path):
    out = synthfarm("render", TINY, "--out", tmp_path / "o", "--set", "radius=99")
    assert out.returncode != 0 and "radius" in out.stderr and "above max" in out.stderr
    assert not (tmp_path / "o").exists()


def test_render_toybox_preview(tmp_path):
    out = synthfarm("render", TOYBOX, "--jobs", 1, "--out", tmp_path, "--preview", "--set", "num_toys=4")
    assert out.returncode == 0, out.stderr
    ann = json.loads((tmp_path / "annotations" / "0000000000-0000-cam-ann.json").read_text())
    classes = {o["class"] for o in ann["objects"]}
    assert "container" in classes and len(ann["objects"]) == 5
    assert ann["image_size"] == [320, 240]
    assert sum(o["visible_pixels"] > 0 for o in ann["objects"]) >= 2  # the box and some toys are seen


def test_ctrl_c_leaves_a_valid_dataset_and_resumes(tmp_path):
    cmd = [sys.executable, "-m", "synthfarm.cli", "render", str(TINY), "--jobs", "30", "--out", str(tmp_path)]
    # SIG_DFL: as in a terminal, even when this suite runs as a background job (whose shell ignores SIGINT, and
    # an ignored SIGINT is inherited: the command would rightly go on rendering)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    jobs_file = tmp_path / "jobs.jsonl"
    while time.time() < deadline:
        if jobs_file.exists() and jobs_file.read_text().count('"done"') >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C does: to the whole process group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert not list(tmp_path.rglob("*.tmp*")), "a partial file was left behind"
    import sqlite3
    with sqlite3.connect(tmp_path / ".farm" / "farm.sqlite") as db:  # the Blender children were not hit by it
        assert db.execute("SELECT COUNT(*) FROM failures").fetchone()[0] == 0
    annotations = sorted((tmp_path / "annotations").glob("*-ann.json"))
    assert 2 <= len(annotations) < 30
    for ann in annotations:  # every committed frame has all its files
        stem = ann.name.removesuffix("-ann.json")
        for sub, suffix in (("images", ".png"), ("masks", ".png"), ("depth", ".exr"), ("metadata", "-meta.json")):
            assert (tmp_path / sub / f"{stem}{suffix}").is_file()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"{len(annotations)} already there" in again.stdout or \
        f"{len(annotations) - 1} already there" in again.stdout  # the interrupted job may have finished its frame
    assert len(list((tmp_path / "annotations").glob("*-ann.json"))) == 30
    assert not re.search(r"\d+ failed", again.stdout)  # an interruption is no job failure


def test_background_script_with_a_blend(tmp_path):
    blend = tmp_path / "scene.blend"
    make = f"""
import bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.mesh.primitive_cube_add(size=0.3, location=(-0.5, -0.3, 0.15))
cube = bpy.context.active_object
cube.name = "Chair.001"
cube["synthfarm_class"] = "chair"
bpy.ops.wm.save_as_mainfile(filepath={str(blend)!r})
"""
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "home")}
    subprocess.run([sys.executable, "-c", make], check=True, env=env, capture_output=True)
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "render.py"), "--blend", str(blend),
                          "--recipe", str(TINY), "--jobs", "1", "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    ann = json.loads((tmp_path / "out" / "annotations" / "0000000000-0000-cam-ann.json").read_text())
    by_class = {o["class"]: o for o in ann["objects"]}
    assert set(by_class) == {"box", "ball", "chair"}
    assert by_class["chair"]["name"] == "Chair.001"


def test_coordinator_refuses_open_addresses_without_keys(tmp_path):
    out = synthfarm("coordinator", "--bind", "0.0.0.0", "--data", tmp_path, timeout=30)
    assert out.returncode != 0 and "refusing to listen on 0.0.0.0 without keys" in out.stderr
