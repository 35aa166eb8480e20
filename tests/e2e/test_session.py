"""The batch API against a running farm: submit, await, download, re-run exactly, estimate."""
from pathlib import Path

import pytest
import yaml

from synthfarm import Batch, Session
from synthfarm.farm.session import DEFAULT_SECONDS_PER_FRAME
from synthfarm.farm.client import FarmError
from synthfarm.farm import embedded
from synthfarm.farm.embedded import EmbeddedFarm

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.yaml"


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    with EmbeddedFarm(tmp_path_factory.mktemp("state"), workers=1, heartbeat=0.3) as farm:
        yield farm


def test_submit_await_download_and_rerun_exactly(farm, tmp_path):
    s = Session(farm.coordinator.clients_endpoint, recipe=TINY, out_root=tmp_path / "batches", random_state=5)
    jobs = [s.sample_input() for _ in range(3)]
    assert s.estimate_samples(jobs) == [1, 1, 1]
    batch = s.submit(jobs, name="first look")
    status = batch.await_completion(timeout=120)
    assert status["jobs"]["done"] == 3 and batch.get_num_jobs_remaining() == 0
    assert [j["params"]["radius"] for j in batch.get_valid_completed_jobs()] == [j["radius"] for j in jobs]
    batch.download(tmp_path / "first")
    again = batch.job_params_seeded_for_rerun()
    assert [j["seed"] for j in again] == [j["seed"] for j in jobs]
    rerun = s.submit(again, name="replay")
    rerun.await_completion(timeout=120)
    rerun.download(tmp_path / "second")
    first = sorted((tmp_path / "first" / "annotations").glob("*.json"))
    assert len(first) == 3
    for path in first:
        assert path.read_bytes() == (tmp_path / "second" / "annotations" / path.name).read_bytes()
    frame = batch.to_dataframe()
    assert list(frame["status"]) == ["done"] * 3 and "radius" in frame.columns
    estimate = s.estimate_seconds(jobs)
    assert estimate is not None and estimate > 0
    assert Batch.from_id(s, batch.id).job_ids == [0, 1, 2]
    with pytest.raises(FarmError, match="no batch"):
        Batch.from_id(s, "nope")


def test_sweep_jobs_render_with_their_values(farm, tmp_path):
    s = Session(farm.coordinator.clients_endpoint, recipe=TINY, out_root=tmp_path / "batches", random_state=6)
    seeds = [s.sample_input()]
    jobs = s.expand_overrides(seeds, [{"radius": r} for r in (1.5, 3.0)])
    batch = s.submit(jobs)
    batch.await_completion(timeout=120)
    import json
    metas = sorted((tmp_path / "batches" / batch.id / "metadata").glob("*.json"))
    assert [json.loads(m.read_text())["params"]["radius"] for m in metas] == [1.5, 3.0]


def test_estimates_before_any_measurement_are_stated_defaults_or_a_calibration(farm, tmp_path):
    recipe = tmp_path / "fresh.yaml"  # a recipe this farm has never rendered (another name, another hash)
    recipe.write_text(TINY.read_text().replace("name: tiny", "name: fresh"))
    s = Session(farm.coordinator.clients_endpoint, recipe=recipe, out_root=tmp_path / "batches", random_state=7)
    jobs = [s.sample_input() for _ in range(4)]
    default = s.estimate(jobs)
    assert default.source.startswith("default") and default.jobs_measured == 0
    assert default.seconds == DEFAULT_SECONDS_PER_FRAME[False] * 4 == s.estimate_seconds(jobs)
    assert s.estimate(jobs, preview=True).seconds == DEFAULT_SECONDS_PER_FRAME[True] * 4
    measured = s.estimate(jobs, calibrate=True)  # renders the first job, then asks the farm
    assert measured.source.startswith("calibration: 1 job") and measured.jobs_measured == 1
    assert 0 < measured.seconds_per_frame < 120 and measured.seconds == measured.seconds_per_frame * 4
    again = s.estimate(jobs)
    assert again.source.startswith("measured") and again.seconds == measured.seconds


def test_dataset_yaml_records_the_values_the_jobs_used(farm, tmp_path):
    s = Session(farm.coordinator.clients_endpoint, recipe=TINY, out_root=tmp_path / "batches", random_state=8)
    jobs = [s.sample_input(radius=r) for r in (1.25, 4.5)]
    batch = s.submit(jobs)
    batch.await_completion(timeout=120)
    info = yaml.safe_load((tmp_path / "batches" / batch.id / "dataset.yaml").read_text())
    assert info["batch"]["job_params"] == {"radius": [1.25, 4.5]}  # not the recipe's default (2.0)
    assert info["batch"]["job_seeds"] == [j["seed"] for j in jobs] and "params" not in info["batch"]


def test_a_local_worker_holds_no_task_ahead(farm):
    """The embedded farm's measured default: its worker asks for the next task when its child has rendered one
    (the coordinator is in the same process), instead of holding one ahead."""
    assert embedded.AHEAD == 0 and [w.ahead for w in farm.workers] == [0]
