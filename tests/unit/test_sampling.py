"""Seeded sampling: determinism, one stream per component, and the log of drawn values."""

import numpy as np

from synthfarm.addon.core.components import COLOR, COUNT, NONNEG
from synthfarm.addon.core.jobs import JobError, coerce_param, make_jobs, resolve_params
from synthfarm.addon.core.recipe import recipe_from_data
from synthfarm.addon.core.sampling import Sampler
from synthfarm.addon.core.values import parse_value

import pytest

RECIPE = {
    "name": "unit",
    "parameters": {"height": {"type": "float", "min": 0.3, "max": 4.0, "default": 1.5},
                   "n": {"type": "int", "min": 1, "max": 9, "default": 3}},
    "generators": [{"name": "toys", "kind": "primitive", "shape": "cube", "count": "${n}", "class": "toy"}],
    "sensors": [{"name": "cam", "kind": "camera"}],
}


def draws(seed, key="randomizers/camera_orbit", n=5):
    sampler = Sampler(seed)
    stream = sampler.stream(key)
    spec = parse_value({"uniform": [0, 10]}, NONNEG)
    return [stream.draw("x", spec, str(i)) for i in range(n)], sampler.log


def test_same_seed_same_values_other_seed_other_values():
    a, log_a = draws(1)
    b, log_b = draws(1)
    c, _ = draws(2)
    assert a == b and log_a == log_b
    assert a != c


def test_streams_are_independent_of_other_components():
    first = Sampler(7)
    first_values = [first.stream("randomizers/lights").draw("energy", parse_value({"uniform": [0, 1]}, NONNEG))]
    second = Sampler(7)
    second.stream("randomizers/new_one").rng.random(1000)  # a component added before: draws a lot
    second_values = [second.stream("randomizers/lights").draw("energy", parse_value({"uniform": [0, 1]}, NONNEG))]
    assert first_values == second_values


def test_log_records_every_draw_with_its_item():
    values, log = draws(3, n=3)
    assert log == {"randomizers/camera_orbit": {"x": {"0": values[0], "1": values[1], "2": values[2]}}}
    assert all(isinstance(v, float) for v in values)


def test_distributions_respect_their_support():
    rng_sampler = Sampler(11).stream("s")
    tri = parse_value({"triangular": [0, 1, 4]}, NONNEG)
    randint = parse_value({"randint": [2, 4]}, COUNT)
    normal = parse_value({"normal": [0.0, 5.0]}, NONNEG)  # clipped to the field's bound (>= 0)
    color = parse_value({"uniform": [[0, 0, 0], [1, 0.5, 0.25]]}, COLOR)
    choice = parse_value({"choice": [1, 2, 3], "weights": [0, 0, 1]}, COUNT)
    t = [rng_sampler.draw("t", tri) for _ in range(300)]
    r = [rng_sampler.draw("r", randint) for _ in range(300)]
    n = [rng_sampler.draw("n", normal) for _ in range(300)]
    c = np.array([rng_sampler.draw("c", color) for _ in range(300)])
    assert 0 <= min(t) and max(t) <= 4 and set(r) == {2, 3, 4} and all(isinstance(v, int) for v in r)
    assert min(n) >= 0 and max(n) > 1
    assert (c.max(axis=0) <= [1, 0.5, 0.25]).all() and (c.min(axis=0) >= 0).all()
    assert {rng_sampler.draw("k", choice) for _ in range(50)} == {3}


def test_sweeps_index_by_job_number():
    spec = parse_value({"sweep_linspace": [0, 1, 3]}, NONNEG)
    arange = parse_value({"sweep_arange": [1, 2, 0.5]}, NONNEG)
    values = [Sampler(0, job_index=i).stream("s").draw("v", spec) for i in range(4)]
    assert values == [0.0, 0.5, 1.0, 0.0]
    assert [Sampler(0, job_index=i).stream("s").draw("v", arange) for i in range(3)] == [1.0, 1.5, 1.0]


def test_param_refs_take_the_job_value():
    recipe = recipe_from_data(RECIPE)
    jobs = make_jobs(recipe, 3, seed=5, params={"n": 7})
    assert [j.id for j in jobs] == [0, 1, 2] and len({j.seed for j in jobs}) == 3
    assert make_jobs(recipe, 3, seed=5, params={"n": 7})[2].seed == jobs[2].seed
    sampler = Sampler(jobs[0].seed, 0, jobs[0].params)
    assert sampler.stream("generators/toys").draw("count", recipe.generators[0].count) == 7


def test_job_params_are_checked():
    recipe = recipe_from_data(RECIPE)
    with pytest.raises(JobError, match="parameter n: 12 is above max 9"):
        resolve_params(recipe, {"n": 12})
    with pytest.raises(JobError, match="unknown parameter 'm'"):
        resolve_params(recipe, {"m": 1})
    with pytest.raises(JobError, match="parameter n: 'x' is not a valid int"):
        coerce_param(recipe, "n", "x")
    assert coerce_param(recipe, "height", "2") == 2.0 and resolve_params(recipe, {"n": 4.0})["n"] == 4
