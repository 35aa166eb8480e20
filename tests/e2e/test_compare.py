"""`synthfarm compare` on a rendered dataset and a folder of other images, and its page in headless Chromium:
the map's points show their image on hover."""
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from browser import needs_chromium, page
from image_sets import make_set

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.yaml"


def synthfarm(*args):
    return subprocess.run([sys.executable, "-m", "synthfarm.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def test_compare_a_rendered_dataset_with_a_folder_of_images(tmp_path):
    render = synthfarm("render", TINY, "--jobs", "6", "--out", tmp_path / "synthetic")
    assert render.returncode == 0, render.stderr[-2000:]
    make_set(tmp_path / "photos" / "2026", 8, seed=4)  # "real" images, found recursively
    run = synthfarm("compare", tmp_path / "synthetic", tmp_path / "photos", "--out", tmp_path / "cmp",
                    "--projection", "pca")
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert lines[0].startswith("features: handcrafted: HSV colour histogram")
    assert lines[1] == "images: 6 and 8"
    assert lines[2].startswith("Fréchet distance ") and lines[3].startswith("at 3 images each: A vs B Fréchet ")
    assert lines[-1] == str(tmp_path / "cmp" / "index.html")
    missing = synthfarm("compare", tmp_path / "synthetic", tmp_path / "photos", "--features", "onnx:nope.onnx",
                        "--out", tmp_path / "cmp2")
    assert missing.returncode == 1 and "nope.onnx does not exist" in missing.stderr


@needs_chromium
def test_comparison_page_shows_a_points_image_on_hover(tmp_path):
    a, b = make_set(tmp_path / "a", 12, seed=5), make_set(tmp_path / "b", 12, seed=6, brightness=0.5)
    run = synthfarm("compare", a, b, "--out", tmp_path / "cmp", "--projection", "pca")
    assert run.returncode == 0, run.stderr[-2000:]
    with page(1200, 900) as tab:
        tab.goto((tmp_path / "cmp" / "index.html").as_uri())
        points = tab.locator("#map .pt")
        assert points.count() == 24 and {p.get_attribute("data-set") for p in points.all()} == {"0", "1"}
        for point in (points.first, points.last):
            point.hover()
            shown = tab.locator("#hover img")
            assert shown.get_attribute("src") == point.get_attribute("data-thumb")
            assert shown.evaluate("i => i.complete && i.naturalWidth") > 0
            assert tab.locator("#hover figcaption").inner_text() == point.get_attribute("data-label")
        link = points.first.locator("xpath=..")
        assert (tmp_path / "cmp" / link.get_attribute("href")).is_file()  # a click opens the larger image
        assert "handcrafted" in tab.locator("#features").inner_text()
        tab.screenshot(path=str(tmp_path / "compare.png"))
        shot = np.asarray(Image.open(tmp_path / "compare.png").convert("L"), dtype=np.float32)
        assert shot.std() > 10
        assert tab.errors == []
