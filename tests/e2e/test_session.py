"""The batch API against a running farm: submit, await, download, re-run exactly, estimate."""
from pathlib import Path

import pytest

from synthfarm import Batch, Session
from synthfarm.farm.client import FarmError
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
