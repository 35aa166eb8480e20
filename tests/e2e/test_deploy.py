"""The container recipe's install (deploy/install.sh, the Containerfile's only install step) run for real into a
fresh virtual environment, offline: the installed copy (not this checkout) renders a job. There is no container
engine here, so the base image itself is not built; everything the image does after FROM is this script."""
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_containerfile_installs_with_the_tested_script():
    lines = [line.strip() for line in (ROOT / "deploy" / "Containerfile").read_text().splitlines()]
    runs = [line for line in lines if line.startswith("RUN ")]
    assert runs and runs[0].startswith("RUN sh /opt/synthfarm/deploy/install.sh /opt/synthfarm")
    assert not any("pip install" in line for line in lines)  # no second way to install


@pytest.fixture()
def venv(tmp_path):
    """A new venv that sees this interpreter's installed packages (bpy, numpy, ...) through a .pth, so the
    install resolves every requirement without a download and copies only synthfarm itself."""
    env = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", env], check=True)
    target = Path(subprocess.run([env / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()"
                                  "['purelib'])"], capture_output=True, text=True, check=True).stdout.strip())
    ours = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    shared = [p for p in sys.path if p.endswith("site-packages") and p not in ours] + sorted(ours)
    (target / "deps-of-the-test-run.pth").write_text("\n".join(shared) + "\n")
    return env


def test_install_script_installs_a_working_synthfarm(venv, tmp_path):
    run = subprocess.run(["sh", ROOT / "deploy" / "install.sh", ROOT, "blender", "--no-index", "--no-build-isolation",
                          "--quiet"], env={**os.environ, "PYTHON": str(venv / "bin" / "python")},
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "version" in run.stdout  # the script ends with `synthfarm --version` from the installed copy
    where = subprocess.run([venv / "bin" / "python", "-c", "import synthfarm; print(synthfarm.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout.strip()
    assert where.startswith(str(venv)), where  # the installed copy, not this checkout
    out = tmp_path / "out"
    render = subprocess.run([venv / "bin" / "synthfarm", "render", ROOT / "tests" / "data" / "tiny.yaml", "--jobs",
                             "1", "--out", out, "--device", "cpu"], capture_output=True, text=True, cwd=tmp_path,
                            timeout=600)
    assert render.returncode == 0, render.stderr[-3000:]
    assert len(list((out / "annotations").glob("*-ann.json"))) == 1
    health = subprocess.run([venv / "bin" / "synthfarm", "health", "--help"], capture_output=True, text=True)
    assert health.returncode == 0  # the probe command the manifests run
