"""``synthfarm render`` starts its Blender child before the command's modules load, and the embedded farm's worker
renders with that child (not a second one); other commands, --in-process and --help start none, and a child started
for another device is not used."""
from pathlib import Path

from synthfarm.cli.early import start_blender_early
from synthfarm.farm import child as children
from synthfarm.farm.embedded import render_on_farm

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.yaml"


def test_render_starts_blender_first_and_its_worker_renders_with_it(tmp_path):
    for argv in (["synthfarm", "render", str(TINY), "--in-process"], ["synthfarm", "validate", str(TINY)],
                 ["synthfarm", "render", "--help"], ["synthfarm", "render", str(TINY), "--device", "tpu"],
                 ["pytest", "render"], ["/venv/lib/python3.13/site-packages/pytest/__main__.py", "render"]):
        assert not start_blender_early(argv) and not children._EARLY, argv
    assert start_blender_early(["synthfarm", "-v", "render", str(TINY), "--out", str(tmp_path), "--device=cpu"])
    [early] = children._EARLY
    summary = render_on_farm(TINY, 1, tmp_path / "out", device="cpu")
    assert summary.jobs_done == 1 and not summary.errors
    assert not children._EARLY and early.process.poll() == 0  # taken by the worker, used, and ended by it


def test_a_child_for_another_device_is_left_alone(tmp_path):
    assert start_blender_early(["/usr/bin/synthfarm", "render", str(TINY), "--device", "gpu"])
    [early] = children._EARLY
    try:
        summary = render_on_farm(TINY, 1, tmp_path / "out", device="cpu")
        assert summary.jobs_done == 1
        assert children._EARLY == [early] and early.alive()  # the cpu worker started its own
    finally:
        children._EARLY.clear()
        early.kill()
