"""The embedded farm: a coordinator (SQLite under the dataset folder) and local workers in one process,
so one machine renders with no set-up. ``synthfarm render`` runs on it.

The batch id is derived from the dataset folder and the batch settings, so running the same command
again resumes the same batch: complete jobs stay, the rest is rendered.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import zmq

from ..addon.core.dataset import lock
from ..addon.core.dataset.convert import export_for_recipe
from ..addon.core.dataset.identity import batch_identity
from ..addon.core.dataset.native import DatasetWriter
from ..addon.core.jobs import resolve_params
from .child import local_gpus
from .client import FarmClient
from .coordinator import Coordinator
from .worker import Worker

# tasks a local worker holds besides the one its child renders: none. The coordinator is in this process, so asking
# costs a few ms, and the child's pipeline hides it (the worker asks when the child says a job is rendered, while
# that job's files are made durable); holding ahead only adds the coordinator's work to the render's cores
# (measured with tests/bench/render_overhead.py --ahead 0 1: see the README's "Measured limits")
AHEAD = 0

log = logging.getLogger(__name__)


class NoWorkerError(RuntimeError):
    """Every worker of the embedded farm stopped because its Blender cannot start; the message says why."""


@dataclass
class FarmSummary:
    out: Path
    batch_id: str
    jobs_total: int
    jobs_done: int
    jobs_failed: int
    jobs_skipped: int
    seconds: float
    interrupted: bool = False
    stopped: str = ""  # why the farm stopped short (its disk is full), or ''
    errors: list | None = None
    exports: dict | None = None


class EmbeddedFarm:
    """A coordinator thread on loopback ports chosen by the OS, and ``workers`` worker threads."""

    def __init__(self, data_dir: Path, workers: int | None = None, *, device: str = "auto", max_jobs: int = 0,
                 max_rss_gb: float = 0.0, heartbeat: float = 0.5):
        self.context = zmq.Context()
        self.coordinator = Coordinator(data_dir, "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0",
                                       "tcp://127.0.0.1:0",
                                       heartbeat=heartbeat, context=self.context, any_out=True,
                                       shared_roots=(Path("/"),))  # this user's own files, in this user's process
        for attempt in self.coordinator.store.running_attempts():  # a previous run's workers are gone
            self.coordinator.store.lose_attempt(attempt["id"], "embedded farm restarted")
        self.coordinator.store.commit()
        gpus = local_gpus() if device != "cpu" else 0
        workers = workers or max(1, gpus)  # one per GPU by default, one on a CPU-only machine
        self.workers = [Worker(self.coordinator.workers_endpoint, f"local-{i}", device=device, max_jobs=max_jobs,
                               max_rss_gb=max_rss_gb, context=self.context, gpu=i if i < gpus else None, ahead=AHEAD)
                        for i in range(workers)]
        self.client = FarmClient(self.coordinator.clients_endpoint, timeout=30, context=self.context)
        self._threads = [threading.Thread(target=self.coordinator.serve, name="coordinator", daemon=True)]
        self._threads += [threading.Thread(target=w.run, name=w.worker_id, daemon=True) for w in self.workers]

    @contextmanager
    def events(self, batch_id: str):
        """A SUB socket on the coordinator's events of one batch (one missed while it connects is made up for by
        the periodic status)."""
        sock = self.context.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SUBSCRIBE, batch_id.encode())
        sock.connect(self.coordinator.events_endpoint)
        try:
            yield sock
        finally:
            sock.close()

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def check_workers(self) -> None:
        """Raise NoWorkerError when no local worker can render (their Blender children do not start)."""
        if all(w.fatal for w in self.workers):
            causes = sorted({w.fatal for w in self.workers})
            raise NoWorkerError("no local worker can render: " + "; ".join(causes))

    def __exit__(self, *exc):
        for worker in self.workers:
            worker.stop()
        for thread in self._threads[1:]:
            thread.join(timeout=60)
        self.coordinator.stop()
        self._threads[0].join(timeout=30)
        self.client.close()  # its kept socket: the context ends once its sockets are closed
        self.context.term()
        return False


def batch_id_for(out: Path, recipe_hash: str, count: int, seed: int, params: dict, preview: bool) -> str:
    key = json.dumps([str(out.resolve()), recipe_hash, count, seed, params, preview], sort_keys=True)
    return "b" + hashlib.sha256(key.encode()).hexdigest()[:15]


def render_on_farm(recipe_path: Path, jobs: int, out: Path, *, seed: int = 0, preview: bool = False,
                   params: dict | None = None, workers: int | None = None, device: str = "auto", max_jobs: int = 0,
                   progress: Callable[[int, int], None] | None = None, poll_seconds: float = 2.0,
                   replace: bool = False) -> FarmSummary:
    """Render ``jobs`` jobs of a recipe file into ``out`` on an embedded farm. The batch's status is read when
    the coordinator announces a change of it (its events), and every ``poll_seconds`` in any case. The folder
    is locked against other writers throughout; a folder holding another dataset is refused unless ``replace``."""
    from ..addon.engine.api import load_source  # a .blend is read with the bpy module, here only

    recipe_path, out = Path(recipe_path).resolve(), Path(out).resolve()
    recipe, recipe_dir, text = load_source(recipe_path)
    params = resolve_params(recipe, params)  # bad values fail here, before anything is created
    with lock.writing(out, "render into it"):
        identity = batch_identity(recipe, preview=preview, seed=seed, params=params)
        DatasetWriter(out).open(text, identity, {"name": recipe.name}, replace=replace)  # refusals come first
        return _run_batch(recipe, recipe_dir, text, jobs, out, seed=seed, preview=preview, params=params,
                          workers=workers, device=device, max_jobs=max_jobs, progress=progress,
                          poll_seconds=poll_seconds)


def _run_batch(recipe, recipe_dir, text: str, jobs: int, out: Path, *, seed, preview, params, workers, device,
               max_jobs, progress, poll_seconds) -> FarmSummary:
    batch_id = batch_id_for(out, recipe.hash(), jobs, seed, params or {}, preview)
    start = time.perf_counter()
    summary = FarmSummary(out, batch_id, jobs, 0, 0, 0, 0.0)
    with EmbeddedFarm(out / ".farm", workers, device=device, max_jobs=max_jobs) as farm, \
            farm.events(batch_id) as events:
        status = farm.client.submit(batch_id=batch_id, name=recipe.name, recipe=text,
                                    recipe_dir=str(recipe_dir), out=str(out), count=jobs, seed=seed,
                                    params=params or {}, preview=preview)
        summary.jobs_skipped = status["jobs"]["done"]
        if not status["new"] and (status["jobs"]["failed"] or status["paused"]):  # a rerun tries them again
            status = farm.client.retry(batch_id)
        try:
            while True:
                counts = status["jobs"]
                if progress:
                    progress(counts["done"] + counts["failed"], jobs)
                if counts["queued"] == 0 and counts["running"] == 0:
                    break
                if status["paused"]:  # nobody here will free the disk: stop, and say so
                    summary.stopped = status["reason"]
                    break
                farm.check_workers()
                if events.poll(int(poll_seconds * 1000)):  # a job moved: drain what came, then ask
                    while events.poll(0):
                        events.recv_multipart()
                status = farm.client.status(batch_id)
        except KeyboardInterrupt:
            summary.interrupted = True
            status = farm.client.status(batch_id)
    shutil.rmtree(out / ".staging", ignore_errors=True)  # attempts cut short leave nothing behind
    summary.jobs_done = status["jobs"]["done"] - summary.jobs_skipped
    summary.jobs_failed = status["jobs"]["failed"]
    summary.errors = status.get("errors")
    summary.seconds = time.perf_counter() - start
    writer = DatasetWriter(out)
    writer.finalize({"jobs": len(writer.completed_jobs()), "jobs_requested": jobs,
                     "frames_per_job": 1 if preview else recipe.frames, "sensors": [v for v, _ in recipe.views()]})
    if not summary.interrupted and not summary.jobs_failed and not summary.stopped:
        summary.exports = export_for_recipe(recipe, recipe_dir, out)
    return summary
