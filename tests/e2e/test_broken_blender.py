"""A worker whose Blender cannot start says so within seconds, with the cause and the fix, and the command
exits non-zero: on the embedded farm (`synthfarm render`) and as a remote worker (`synthfarm worker`), whose
coordinator marks it broken. Two real failures: the bpy module not importable (an install without the
`blender` extra; here a bpy that raises ImportError on import is put first on the path) and a Blender
executable that dies at start (as one missing a shared library does)."""
import os
import subprocess
import sys
import time
from pathlib import Path

from farm_procs import Farm

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"


def without_bpy(tmp_path: Path) -> dict:
    shadow = tmp_path / "no-bpy"
    shadow.mkdir()
    (shadow / "bpy.py").write_text("raise ImportError(\"No module named 'bpy'\")\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow), os.environ.get("PYTHONPATH", "")])}


def test_render_without_bpy_fails_fast_with_the_fix(tmp_path):
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "synthfarm.cli", "render", str(TINY), "--jobs", "2", "--out",
                          str(tmp_path / "d")], capture_output=True, text=True, env=without_bpy(tmp_path), timeout=60)
    assert time.monotonic() - start < 10
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: no local worker can render: Blender cannot be imported")
    assert "No module named 'bpy'" in last and "pip install 'synthfarm[blender]'" in last


def test_remote_worker_with_a_dead_blender_is_reported(tmp_path):
    blender = tmp_path / "blender"
    blender.write_text("#!/bin/sh\necho 'blender: error while loading shared libraries: libXi.so.6: cannot open "
                       "shared object file' >&2\nexit 127\n")
    blender.chmod(0o755)
    farm = Farm(tmp_path, workers=0)
    try:
        start = time.monotonic()
        for name, extra, env in (("dead", ["--blender", str(blender)], None),
                                 ("no-bpy", [], without_bpy(tmp_path))):
            out = subprocess.run([sys.executable, "-m", "synthfarm.cli", "worker", "--connect",
                                  f"tcp://127.0.0.1:{farm.port}", "--name", name, *extra],
                                 capture_output=True, text=True, env=env, timeout=60)
            assert out.returncode == 1, out.stderr
            assert "this worker cannot render" in out.stderr
        assert time.monotonic() - start < 20  # both, each well within 10 s
        assert "libXi.so.6" in out.stderr or "No module named 'bpy'" in out.stderr
        listed = {w["id"]: w for w in farm.client.workers()}
        assert listed["dead"]["status"] == "broken" and "libXi.so.6" in listed["dead"]["error"]
        assert "exit code 127" in listed["dead"]["error"] and "--blender executable" in listed["dead"]["error"]
        assert listed["no-bpy"]["status"] == "broken" and "pip install 'synthfarm[blender]'" in listed["no-bpy"]["error"]
    finally:
        farm.stop()
