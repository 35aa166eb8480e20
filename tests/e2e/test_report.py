"""The report, and the batch workflow example that ends with it, checked in headless Chromium."""
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from browser import needs_chromium, page
from synthfarm.addon.core.analytics import SECTIONS
from synthfarm.addon.core.analytics.report import TITLES

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """examples/batch_workflow.py end to end on the embedded farm, with tiny frames."""
    out = tmp_path_factory.mktemp("workflow")
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "batch_workflow.py"), "--recipe", str(TINY),
                           "--jobs", "3", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "re-ran job 0" in done.stdout and "s on one worker (default:" in done.stdout
    return out / "dataset"


def test_workflow_writes_a_complete_report(workflow):
    report = workflow / "report"
    page = (report / "index.html").read_text()
    for section in SECTIONS:
        assert f'id="{section}"' in page
    for image in ("classes.png", "per-class.png", "objects.png", "box-sizes.png", "box-centres.png", "visibility.png",
                  "truncation.png", "distance.png", "depth.png", "viewpoints.png", "draws-randomizers-camera_orbit.png",
                  "brightness.png", "samples.png", "overlays.png", "param-radius.png"):
        with Image.open(report / image) as im:
            assert im.size[0] > 100 and np.asarray(im.convert("L")).std() > 5  # a real plot, not blank
    assert "3 frames" in page and "<td>ball</td><td>3</td><td>3</td>" in page  # the per-class table


@needs_chromium
def test_report_screenshots_show_every_section(workflow, tmp_path):
    with page() as tab:
        tab.goto((workflow / "report" / "index.html").as_uri())
        for key in SECTIONS:
            section = tab.locator(f"#{key}")
            assert section.is_visible()
            assert section.locator("h2").inner_text() == TITLES[key]
            shot = Image.open(io.BytesIO(section.screenshot())).convert("L")
            assert shot.height > 60 and np.asarray(shot, dtype=np.float32).std() > 10, key  # drawn, not blank
            for image in section.locator("img").all():  # every picture loaded and shown
                assert image.evaluate("i => i.complete && i.naturalWidth") > 0
                assert image.bounding_box()["width"] > 100, (key, image.get_attribute("src"))
        tab.screenshot(path=str(tmp_path / "report.png"), full_page=True)  # the whole page, to look at by hand
        assert tab.errors == []
