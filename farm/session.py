"""The batch API: craft jobs from a recipe's parameters, submit them, await, download, re-run.

    >>> from synthfarm import Session
    >>> s = Session("tcp://127.0.0.1:5556", recipe="assets/recipes/toybox.yaml")
    >>> jobs = [s.sample_input(num_toys=20) for _ in range(100)]
    >>> assert not any(s.validate_job_params(jobs))
    >>> b = s.submit(jobs, preview=True, name="first look")
    >>> b.await_completion(timeout=3600); b.download("out/")
    >>> again = b.job_params_seeded_for_rerun()

A job is a dict of parameter values; an optional ``seed`` key fixes its seed (otherwise one is drawn).
"""
from __future__ import annotations

import itertools
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..addon.core.jobs import JobError, resolve_params
from ..addon.core.recipe import Recipe
from .client import FarmClient, FarmError
from .transfer import make_bundle

SEED = "seed"  # the key of a job dict that holds its seed
# Seconds per frame assumed before a farm has measured a recipe (full tier, preview tier): the order of the
# example recipe (640x480, 16 samples) on a CPU worker. Session.estimate(..., calibrate=True) measures instead.
DEFAULT_SECONDS_PER_FRAME = {False: 20.0, True: 5.0}


@dataclass(frozen=True)
class TimeEstimate:
    frames: int
    seconds: float  # render time on one worker
    seconds_per_frame: float
    jobs_measured: int  # 0 when the default was used
    source: str  # where seconds_per_frame came from


class Session:
    def __init__(self, endpoint: str, recipe: str | Path, *, keys: str | Path | None = None, timeout: float = 30.0,
                 out_root: str | Path = "synthfarm-batches", shared: bool = False, random_state: int | None = None):
        from ..addon.engine.api import load_source  # a .blend is read with the bpy module, only then imported

        self.recipe_path = Path(recipe).resolve()  # a recipe file, or a .blend with a recipe on its scene
        model, recipe_dir, self.recipe_text = load_source(self.recipe_path)
        self.recipe: Recipe = model
        self.recipe_dir = Path(recipe_dir)
        self.client = FarmClient(endpoint, timeout=timeout, keys=Path(keys) if keys else None)
        self.out_root, self.shared = Path(out_root), shared  # relative: under the coordinator's dataset root
        self.rng = np.random.default_rng(random_state)

    # -- crafting jobs --
    @property
    def parameter_info(self) -> dict[str, dict]:
        return self.recipe.parameter_info

    def sample_input(self, **fixed) -> dict[str, Any]:
        """One job: every parameter drawn uniformly from its declared range (choices uniformly), except
        those given, redrawn until the recipe's constraints hold; a fresh seed unless ``seed=`` is given.
        Raises JobError for a bad fixed value or constraints that the draws cannot meet."""
        for _ in range(1000):
            job = self._draw(fixed)
            try:
                self._check(job)
                return job
            except JobError as err:
                problem = err
                if any(name not in self.recipe.parameters for name in fixed if name != SEED):
                    raise
        raise JobError(f"no draw met the constraints in 1000 tries ({problem})")

    def _draw(self, fixed: dict) -> dict[str, Any]:
        job = {}
        for name, param in self.recipe.parameters.items():
            if name in fixed:
                continue
            if param.type == "choice":
                job[name] = param.choices[int(self.rng.integers(len(param.choices)))]
            elif param.type == "bool":
                job[name] = bool(self.rng.integers(2))
            elif param.min is None or param.max is None:
                job[name] = param.default  # an unbounded parameter keeps its default
            elif param.type == "int":
                job[name] = int(self.rng.integers(int(param.min), int(param.max), endpoint=True))
            else:
                job[name] = float(self.rng.uniform(param.min, param.max))
        job.update(fixed)
        job.setdefault(SEED, int(self.rng.integers(0, 2 ** 62)))
        return job

    def _check(self, job: dict) -> dict:
        params = {k: v for k, v in job.items() if k != SEED}
        seed = job.get(SEED)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise JobError(f"seed: {seed!r} must be a whole number >= 0")
        return resolve_params(self.recipe, params)

    def validate_job_params(self, jobs: list[dict]) -> list[str | None]:
        """One entry per job: None when valid, else a message naming the parameter and the rule."""
        out = []
        for job in jobs:
            try:
                self._check(job)
                out.append(None)
            except JobError as err:
                out.append(str(err))
        return out

    def estimate_samples(self, jobs: list[dict], preview: bool = False) -> list[int]:
        """Frames each job renders (a preview renders one)."""
        return [1 if preview else self.recipe.frames for _ in jobs]

    def estimate(self, jobs: list[dict], preview: bool = False, *, calibrate: bool = False,
                 timeout: float = 600.0) -> "TimeEstimate":
        """Frames and render seconds of the jobs on one worker. From the seconds per frame this farm measured
        for this recipe and tier; before any such job finished, ``calibrate=True`` first renders one job (the
        first of ``jobs``) to measure it, otherwise the stated default ``DEFAULT_SECONDS_PER_FRAME`` is used
        (``source`` says which)."""
        frames = sum(self.estimate_samples(jobs, preview))
        found = self.client.request("ESTIMATE", _estimate(self.recipe.hash(), preview))
        source = "measured"
        if not found and calibrate:
            self.calibrate(jobs[0] if jobs else None, preview=preview, timeout=timeout)
            found = self.client.request("ESTIMATE", _estimate(self.recipe.hash(), preview))
            source = "calibration"
        if found:
            per_frame, measured = found["seconds_per_frame"], found["jobs_measured"]
            source = f"{source}: {measured} job(s) of this recipe ({'preview' if preview else 'full'}) on this farm"
        else:
            per_frame, measured = DEFAULT_SECONDS_PER_FRAME[preview], 0
            source = (f"default: {per_frame:g} s per {'preview ' if preview else ''}frame (this farm has not "
                      "measured this recipe yet; calibrate=True renders one job to measure it)")
        return TimeEstimate(frames=frames, seconds=per_frame * frames, seconds_per_frame=per_frame,
                            jobs_measured=measured, source=source)

    def estimate_seconds(self, jobs: list[dict], preview: bool = False, *, calibrate: bool = False) -> float:
        """Render seconds of the jobs on one worker (see :meth:`estimate`); never None."""
        return self.estimate(jobs, preview, calibrate=calibrate).seconds

    def calibrate(self, job: dict | None = None, *, preview: bool = False, timeout: float = 600.0) -> "Batch":
        """Render one job (``job``, or a sampled one) so this farm measures the recipe's seconds per frame for
        this tier. Raises FarmError when it fails, TimeoutError after ``timeout`` seconds."""
        batch = self.submit([dict(job) if job else self.sample_input()], preview=preview, name="calibration")
        status = batch.await_completion(timeout=timeout, poll=0.25)
        if status["jobs"]["done"] != 1:
            errors = "; ".join(e["error"].splitlines()[0] for e in status.get("errors") or [])
            raise FarmError(f"the calibration job of batch {batch.id} failed: {errors or status['jobs']}")
        return batch

    @staticmethod
    def expand_overrides(seed_jobs: list[dict], overrides: list[dict]) -> list[dict]:
        """Each seed job with each override applied (len(seed_jobs) x len(overrides) jobs)."""
        return [{**job, **override} for job, override in itertools.product(seed_jobs, overrides)]

    # -- sweep designs --
    def grid(self, **axes: list) -> list[dict]:
        """Every combination of the given values (other parameters at their defaults)."""
        names = list(axes)
        return [self._with_seed(dict(zip(names, values))) for values in itertools.product(*axes.values())]

    def latin_hypercube(self, n: int, names: list[str], seed: int | None = None) -> list[dict]:
        """``n`` jobs whose values of ``names`` form a Latin hypercube over the parameters' ranges."""
        from scipy.stats import qmc

        return self._design(qmc.LatinHypercube(d=len(names), seed=seed).random(n), names)

    def sobol(self, n: int, names: list[str], seed: int | None = None) -> list[dict]:
        """``n`` jobs (a power of two keeps the balance) from a scrambled Sobol sequence over the ranges."""
        from scipy.stats import qmc

        return self._design(qmc.Sobol(d=len(names), scramble=True, seed=seed).random(n), names)

    def _design(self, unit: np.ndarray, names: list[str]) -> list[dict]:
        jobs = []
        for row in unit:
            job = {}
            for name, u in zip(names, row):
                param = self.recipe.parameters.get(name)
                if param is None or param.type not in ("int", "float") or param.min is None or param.max is None:
                    raise JobError(f"parameter {name}: sweeps need an int or float parameter with min and max")
                if param.type == "int":  # equal-width bins, one per integer
                    job[name] = int(min(param.max, param.min + np.floor(u * (param.max - param.min + 1))))
                else:
                    job[name] = float(param.min + u * (param.max - param.min))
            jobs.append(self._with_seed(job))
        return jobs

    def _with_seed(self, job: dict) -> dict:
        job.setdefault(SEED, int(self.rng.integers(0, 2 ** 62)))
        return job

    # -- running --
    def submit(self, jobs: list[dict], *, preview: bool = False, name: str = "", priority: int = 50,
               out: str | Path | None = None, batch_id: str | None = None) -> "Batch":
        """Validate every job (nothing is sent if one is invalid), upload inputs, submit. Returns the Batch."""
        problems = [f"job {i}: {p}" for i, p in enumerate(self.validate_job_params(jobs)) if p]
        if problems:
            raise JobError("invalid jobs, nothing submitted:\n  " + "\n  ".join(problems[:20]))
        if not jobs:
            raise JobError("no jobs to submit")
        batch_id = batch_id or uuid.uuid4().hex[:16]
        inputs, recipe_path = {}, ""
        if not self.shared:
            root, recipe_path, inputs = make_bundle(self.recipe, self.recipe_path)
            self.client.upload_inputs(root, inputs)
        job_inputs = [{"params": {k: v for k, v in job.items() if k != SEED},
                       "seed": job.get(SEED, int(self.rng.integers(0, 2 ** 62)))} for job in jobs]
        self.client.submit(batch_id=batch_id, name=name, recipe=self.recipe_text,
                           recipe_dir=str(self.recipe_dir), out=str(Path(out or self.out_root / batch_id)),
                           count=len(jobs), preview=preview, priority=priority, inputs=inputs,
                           recipe_path=recipe_path, jobs=job_inputs)
        return Batch(self, batch_id)


def _estimate(recipe_hash: str, preview: bool):
    from .protocol import Estimate

    return Estimate(recipe_hash=recipe_hash, preview=preview)


class Batch:
    def __init__(self, session: Session, batch_id: str):
        self.session, self.id = session, batch_id

    @classmethod
    def from_id(cls, session: Session, batch_id: str) -> "Batch":
        """An earlier batch, by id (raises FarmError if the coordinator does not know it)."""
        session.client.status(batch_id)
        return cls(session, batch_id)

    def _jobs(self) -> list[dict]:
        from .protocol import JobsPage

        jobs, offset = [], 0
        while offset is not None:  # page by page: the coordinator answers a bounded slice each time
            page = self.session.client.request("JOBS", JobsPage(batch_id=self.id, offset=offset))
            jobs += page["jobs"]
            offset = page["next"]
        return jobs

    @property
    def job_ids(self) -> list[int]:
        return [j["job_id"] for j in self._jobs()]

    @property
    def job_params(self) -> list[dict]:
        return [j["params"] for j in self._jobs()]

    def status(self) -> dict:
        return self.session.client.status(self.id)

    def get_num_jobs_remaining(self) -> int:
        jobs = self.status()["jobs"]
        return jobs["queued"] + jobs["running"]

    def await_completion(self, timeout: float | None = None, progress: Callable[[int, int], None] | None = None,
                         poll: float = 1.0) -> dict:
        """Wait until no job is queued or running; raises TimeoutError after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status()
            jobs = status["jobs"]
            if progress:
                progress(jobs["done"] + jobs["failed"], status["count"])
            if jobs["queued"] + jobs["running"] == 0:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"batch {self.id}: {jobs['queued'] + jobs['running']} jobs left after {timeout} s")
            time.sleep(poll)

    def get_valid_completed_jobs(self) -> list[dict]:
        """The finished jobs: {job_id, params, seed, seconds}."""
        return [{k: j[k] for k in ("job_id", "params", "seed", "seconds")} for j in self._jobs()
                if j["status"] == "done"]

    def download(self, path: str | Path, progress: Callable[[int, int], None] | None = None) -> Path:
        self.session.client.download(self.id, Path(path), progress)
        return Path(path)

    def job_params_seeded_for_rerun(self) -> list[dict]:
        """Every job as it ran: its parameters plus its seed (submit them again for an exact replay)."""
        return [{**j["params"], SEED: j["seed"]} for j in self._jobs()]

    def to_dataframe(self):
        """One row per job: id, status, seconds, seed and one column per parameter (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise FarmError("to_dataframe needs pandas: pip install pandas") from None
        return pd.DataFrame([{"job_id": j["job_id"], "status": j["status"], "seconds": j["seconds"],
                              "seed": j["seed"], **j["params"]} for j in self._jobs()])
