"""Sweep designs and job crafting of the batch API (no farm needed)."""
from pathlib import Path

import numpy as np
import pytest

from synthfarm.addon.core.jobs import JobError
from synthfarm.farm.session import Session

RECIPE = "assets/recipes/toybox.yaml"


@pytest.fixture()
def session():
    return Session("tcp://127.0.0.1:1", recipe=RECIPE, random_state=3)  # nothing is sent in these tests


def test_latin_hypercube_puts_one_job_in_each_bin(session):
    n = 20
    jobs = session.latin_hypercube(n, ["camera_height"], seed=1)
    lo, hi = 0.3, 4.0
    bins = np.floor((np.array([j["camera_height"] for j in jobs]) - lo) / (hi - lo) * n).astype(int)
    assert sorted(bins.tolist()) == list(range(n))


def test_sobol_is_balanced_in_every_dimension(session):
    jobs = session.sobol(32, ["camera_height", "num_toys"], seed=2)
    heights = np.array([j["camera_height"] for j in jobs])
    assert sorted(np.floor((heights - 0.3) / 3.7 * 32).astype(int).tolist()) == list(range(32))
    toys = np.bincount([j["num_toys"] for j in jobs], minlength=31)[1:]
    assert toys.max() <= 2  # an integer's bin (1/30 wide) spans at most two of the 32 strata
    assert all(1 <= j["num_toys"] <= 30 and isinstance(j["num_toys"], int) for j in jobs)
    assert len({j["seed"] for j in jobs}) == 32


def test_grid_overrides_and_sampling(session):
    grid = session.grid(num_toys=[1, 5], camera_height=[0.5, 1.0, 2.0])
    assert len(grid) == 6 and {(j["num_toys"], j["camera_height"]) for j in grid} == {
        (a, b) for a in (1, 5) for b in (0.5, 1.0, 2.0)}
    seeds = [session.sample_input(num_toys=3) for _ in range(2)]
    expanded = session.expand_overrides(seeds, [{"camera_height": h} for h in (0.5, 1.0, 2.0)])
    assert len(expanded) == 6 and all(j["num_toys"] == 3 for j in expanded)
    assert [j["seed"] for j in expanded] == [seeds[0]["seed"]] * 3 + [seeds[1]["seed"]] * 3
    sample = session.sample_input()
    assert 1 <= sample["num_toys"] <= 30 and 0.3 <= sample["camera_height"] <= 4.0


def test_invalid_jobs_are_named_and_nothing_is_sent(session):
    problems = session.validate_job_params([{"num_toys": 3}, {"num_toys": 99}, {"num_tos": 1}, {"seed": -1}])
    assert problems[0] is None
    assert problems[1] == "parameter num_toys: 99 is above max 30"
    assert "unknown parameter 'num_tos'" in problems[2]
    assert "seed" in problems[3]
    with pytest.raises(JobError, match="job 1: parameter num_toys: 99 is above max 30"):
        session.submit([{"num_toys": 3}, {"num_toys": 99}])  # raised before any socket is used
    with pytest.raises(JobError, match="sweeps need"):
        session.sobol(4, ["seedless"])
    assert session.estimate_samples([{}, {}], preview=True) == [1, 1]


def test_constraints_between_parameters(tmp_path):
    import yaml

    from synthfarm.addon.core.recipe import RecipeError

    data = yaml.safe_load(open(RECIPE).read())
    data["parameters"]["max_height"] = {"type": "float", "min": 0.3, "max": 4.0, "default": 2.0}
    data["constraints"] = [{"left": "camera_height", "op": "<=", "right": "max_height"},
                           {"left": "num_toys", "op": "<", "right": 10}]
    path = Path(RECIPE).resolve().parent / f".constraints-{tmp_path.name}.yaml"  # beside toybox: same assets
    path.write_text(yaml.safe_dump(data))
    try:
        s = Session("tcp://127.0.0.1:1", recipe=path, random_state=1)
        jobs = [s.sample_input() for _ in range(50)]
        assert all(j["camera_height"] <= j["max_height"] and j["num_toys"] < 10 for j in jobs)
        assert s.validate_job_params([{"camera_height": 3.0, "max_height": 1.0}])[0] == (
            "constraint camera_height <= max_height does not hold: camera_height = 3.0, max_height = 1.0")
        data["constraints"].append({"left": "height", "op": ">", "right": 0})
        path.write_text(yaml.safe_dump(data))
        with pytest.raises(RecipeError, match=r"constraints\[2\].left: no parameter 'height'"):
            Session("tcp://127.0.0.1:1", recipe=path)
    finally:
        path.unlink()
