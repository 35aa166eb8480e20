"""The report, and the batch workflow example that ends with it, checked in headless Chromium."""
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthfarm.addon.core.analytics import SECTIONS

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """examples/batch_workflow.py end to end on the embedded farm, with tiny frames."""
    out = tmp_path_factory.mktemp("workflow")
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "batch_workflow.py"), "--recipe", str(TINY),
                           "--jobs", "3", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "re-ran job 0" in done.stdout
    return out / "dataset"


def test_workflow_writes_a_complete_report(workflow):
    report = workflow / "report"
    page = (report / "index.html").read_text()
    for section in SECTIONS:
        assert f'id="{section}"' in page
    for image in ("classes.png", "objects.png", "box-sizes.png", "visibility.png", "brightness.png", "samples.png",
                  "param-radius.png"):
        with Image.open(report / image) as im:
            assert im.size[0] > 100 and np.asarray(im.convert("L")).std() > 5  # a real plot, not blank
    assert "3 frames" in page


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (.ci/run installs it)")
def test_report_opens_in_headless_chromium(workflow):
    page = (workflow / "report" / "index.html").as_uri()
    profile = tempfile.mkdtemp()
    shot = workflow / "report-screenshot.png"
    run = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--window-size=1280,4000",
                          "--enable-logging=stderr", f"--screenshot={shot}", page],
                         capture_output=True, text=True, timeout=120)
    assert shot.is_file(), run.stderr[-2000:]
    assert "CONSOLE" not in run.stderr and "Uncaught" not in run.stderr  # no console errors
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.std() > 10  # not blank
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page],
                         capture_output=True, text=True, timeout=120).stdout
    for section in SECTIONS:
        assert f'<section id="{section}">' in dom
    assert dom.count("<img") >= 8
