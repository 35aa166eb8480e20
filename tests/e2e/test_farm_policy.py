"""The failure policy with few workers, out-of-space as a batch condition, and the embedded farm's exit,
with real processes on loopback (issue 14, finding 2)."""
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from farm_procs import Farm, SmallDisk, StandIn, check_dataset

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"


@pytest.fixture()
def farm(tmp_path):
    farm = Farm(tmp_path, workers=0)
    yield farm
    farm.stop()


def workers_endpoint(farm):
    return f"tcp://127.0.0.1:{farm.port}"


def test_one_worker_fails_a_job_after_three_attempts_and_goes_on(farm, tmp_path):
    farm.submit(TINY, 2, tmp_path / "out")
    w = StandIn(workers_endpoint(farm), "only")
    tries = []
    for _ in range(3):  # the only worker gets the failing job again: nobody else could take it
        task = w.take()
        assert task is not None, "the failed job was never given out again"
        assert task.job_id == 0
        tries.append(task.attempt_id)
        w.finish(task, ok=False, error="RuntimeError: the Blender process died (exit code -11)")
    task = w.take()
    assert task.job_id == 1
    w.render(task)
    status = farm.wait(lambda s: s["jobs"]["queued"] + s["jobs"]["running"] == 0, timeout=20)
    assert status["jobs"]["failed"] == 1 and status["jobs"]["done"] == 1
    assert status["errors"][0]["job_id"] == 0 and "exit code -11" in status["errors"][0]["error"]
    assert "1 job failed after 3 attempts" in status["reason"]
    assert w.take() is None


def test_two_workers_fail_a_job_in_three_attempts(farm, tmp_path):
    farm.submit(TINY, 1, tmp_path / "out")
    a, b = StandIn(workers_endpoint(farm), "a"), StandIn(workers_endpoint(farm), "b")
    for worker in (a, b, a):
        task = worker.take()
        assert task is not None and task.job_id == 0
        worker.finish(task, ok=False, error="boom")
    status = farm.wait(lambda s: s["jobs"]["failed"] == 1, timeout=20)
    assert status["jobs"]["queued"] == 0


def test_a_blocked_worker_leaves_work_to_others_but_not_to_nobody(farm, tmp_path):
    farm.submit(TINY, 5, tmp_path / "out")
    bad = StandIn(workers_endpoint(farm), "bad")
    for _ in range(7):  # jobs 0 and 1 fail three times each, job 2 once: three jobs of the batch failed on it
        task = bad.take()
        bad.finish(task, ok=False, error="GPU fell off the bus")
    assert farm.client.status("batch")["blocked"] == ["bad"]
    assert bad.take() is not None  # blocked, but still served: nobody else could do the work
    good = StandIn(workers_endpoint(farm), "good")
    assert good.take() is not None
    assert bad.take() is None  # now someone else can
    status = farm.client.status("batch")
    assert "bad left out after failing 3 of its jobs" in status["reason"], status["reason"]


def broken_recipe(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "thing.obj").write_text("this is not a mesh\n")
    data = yaml.safe_load(TINY.read_text())
    data["generators"].append({"name": "thing", "kind": "asset", "source": "thing.obj", "class": "thing"})
    path = folder / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def render(recipe, out, timeout=300):
    return subprocess.run([sys.executable, "-m", "synthfarm.cli", "render", str(recipe), "--jobs", "2",
                           "--out", str(out), "--device", "cpu"], capture_output=True, text=True, timeout=timeout)


def test_render_exits_with_the_error_and_a_rerun_retries(tmp_path):
    recipe = broken_recipe(tmp_path / "recipe")
    first = render(recipe, tmp_path / "out")
    assert first.returncode == 1, first.stderr[-2000:]
    assert "job 0 failed" in first.stderr and "thing.obj" in first.stderr
    again = render(recipe, tmp_path / "out")  # the failures are stored under out/.farm: it tries again
    assert again.returncode == 1 and "job 0 failed" in again.stderr
    (recipe.parent / "thing.obj").write_text("v 0 0 0\nv 0.2 0 0\nv 0 0.2 0\nf 1 2 3\n")
    fixed = render(recipe, tmp_path / "out")
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert "2/2 jobs" in fixed.stdout
    check_dataset(tmp_path / "out", 2, 1)


def test_a_full_output_disk_pauses_the_batch_and_resumes(tmp_path):
    disk = SmallDisk(tmp_path / "disk", size="8m")
    farm = Farm(tmp_path, workers=0, out_root=tmp_path / "disk", coordinator_args=("--min-free-mb", 1))
    try:
        farm.submit(TINY, 6, tmp_path / "disk" / "out")
        disk.fill()
        farm.workers += [farm.start_worker("w0"), farm.start_worker("w1")]
        status = farm.wait(lambda s: "out of space" in s["reason"], timeout=120)
        assert status["jobs"]["failed"] == 0
        time.sleep(3)  # paused: nothing is dispatched, nothing fails, nobody is blocked
        status = farm.client.status("batch")
        assert status["jobs"]["failed"] == 0 and status["jobs"]["running"] == 0 and "out of space" in status["reason"]
        disk.free()
        status = farm.wait(lambda s: s["jobs"]["done"] == 6, timeout=180)
        assert status["jobs"]["failed"] == 0 and "out of space" not in status["reason"]
        check_dataset(tmp_path / "disk" / "out", 6, 1)
    finally:
        farm.stop()
        disk.close()
