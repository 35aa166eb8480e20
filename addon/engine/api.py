"""The Python API for users' own scripts (and what the CLI and ``scripts/render.py`` call)::

    >>> import synthfarm
    >>> summary = synthfarm.render("assets/recipes/toybox.yaml", jobs=8, out="out/toybox", seed=1)

Rendering into a folder that already holds the same dataset resumes it: complete jobs are skipped.
Ctrl-C (KeyboardInterrupt) stops after the current frame's files are either all in place or absent, and
leaves a valid dataset of the jobs completed.
"""
from __future__ import annotations

import logging
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..core.dataset import lock
from ..core.dataset.background import BackgroundWriter
from ..core.dataset.convert import export_for_recipe
from ..core.dataset.identity import batch_identity
from ..core.dataset.native import DatasetWriter
from ..core.heap import keep_freed_memory
from ..core.jobs import JobSpec, make_jobs
from ..core.recipe import Recipe, load_recipe, parse_recipe_text

log = logging.getLogger(__name__)


@dataclass
class RenderSummary:
    out: Path
    jobs_total: int
    jobs_rendered: int
    jobs_skipped: int
    frames: int
    seconds: float
    render_seconds: float
    interrupted: bool = False
    device: str = ""
    exports: dict | None = None


def load_source(recipe: str | Path | Recipe) -> tuple[Recipe, Path | None, str]:
    """(Recipe, folder its paths start from, its text) of a recipe file, a .blend holding a recipe on its
    scene (opened in this process; the file becomes ``scene.base``), or a Recipe."""
    if isinstance(recipe, Recipe):
        return recipe, recipe.base_dir, recipe.to_yaml()
    path = Path(recipe)
    if path.suffix.lower() == ".blend":
        from .blend_recipe import recipe_text_from_blend

        text, base = recipe_text_from_blend(path)
        return parse_recipe_text(text, base, str(path)), base, text
    text = path.read_text(encoding="utf-8") if path.is_file() else None
    if text is None:
        load_recipe(path)  # raises a clear FileNotFoundError
    return parse_recipe_text(text, path.resolve().parent, str(path)), path.resolve().parent, text


def render(recipe: str | Path | Recipe, jobs: int = 1, out: str | Path = "out", *, seed: int = 0,
           preview: bool = False, params: dict[str, Any] | None = None, device: str = "auto",
           use_current_scene: bool = False, progress: bool | Callable[[int, int], None] = True,
           runner=None, replace: bool = False) -> RenderSummary:
    """Render ``jobs`` jobs of ``recipe`` into the dataset folder ``out`` in this process.

    recipe: a path to a YAML recipe, a .blend whose scene holds a recipe (opened here; it becomes the
    scene every job starts from), or a Recipe. params: parameter values for every job (the recipe's
    defaults otherwise). device: auto | cpu | gpu. use_current_scene: start from the scene that is open
    now (``blender file.blend --python ...``) instead of an empty one. progress: True for a progress bar,
    or a callback (done, total). A folder holding the same dataset (recipe, seed, tier, parameters,
    resolutions) is resumed; another dataset there raises DatasetMismatchError unless ``replace``. On Linux it sets
    glibc to keep freed memory for reuse in this process (core/heap.py; the add-on's Render Locally does not)."""
    keep_freed_memory()  # glibc keeps freed memory for the labels' arrays (core/heap.py)
    batch = LocalBatch(recipe, jobs, out, seed=seed, preview=preview, params=params, device=device,
                       use_current_scene=use_current_scene, runner=runner, replace=replace)
    bar = _progress(progress, batch.summary.jobs_total, batch.summary.jobs_skipped)
    stop = GracefulInterrupt()
    try:
        stop.__enter__()
        while batch.step(should_stop=stop.check):
            bar(1)
    except KeyboardInterrupt:
        batch.interrupted()
    except BaseException:
        batch.close()
        raise
    finally:
        stop.__exit__()
        bar(None)
    return batch.finish()


class LocalBatch:
    """A batch rendered in this process one job per :meth:`step` (the CLI loops; the add-on's Render
    Locally steps from a timer). :meth:`finish` writes the dataset summary and the exports; after
    :meth:`interrupted` it removes what an unfinished job left and skips the exports. The dataset
    folder is locked against other writers from the start until :meth:`finish` (or :meth:`close`)."""

    def __init__(self, recipe: str | Path | Recipe, jobs: int, out: str | Path, *, seed: int = 0,
                 preview: bool = False, params: dict[str, Any] | None = None, device: str = "auto",
                 use_current_scene: bool = False, runner=None, base_dir: Path | None = None, replace: bool = False):
        from .runner import Runner, versions  # needs bpy; imported here so that this module's import stays cheap

        self.recipe, loaded_dir, text = load_source(recipe)
        self.base_dir = base_dir or loaded_dir
        self.batch = make_jobs(self.recipe, jobs, seed=seed, preview=preview, params=params)
        self.out = Path(out)
        self.writer = DatasetWriter(self.out)
        self.frames: BackgroundWriter | None = None
        self._lock = lock.acquire(self.out, "render into it")
        try:
            identity = batch_identity(self.recipe, preview=preview, seed=seed, params=self.batch[0].params)
            done = self.writer.open(text, identity, {"name": self.recipe.name, "versions": versions()},
                                    replace=replace)
        except BaseException:
            self.close()
            raise
        self.todo = [job for job in self.batch if job.id not in done]
        self.frames = BackgroundWriter(self.writer)  # a job is written while the next one renders
        self.runner = runner or Runner(device=device, use_current_scene=use_current_scene)
        self.summary = RenderSummary(self.out, len(self.batch), 0, len(self.batch) - len(self.todo), 0, 0.0, 0.0)
        self.scratch = Path(tempfile.mkdtemp(prefix="synthfarm-scratch-"))
        self._start = time.perf_counter()

    @property
    def done(self) -> int:
        return self.summary.jobs_skipped + self.summary.jobs_rendered

    def step(self, should_stop=lambda: None) -> bool:
        """Render the next job; False when none is left."""
        if not self.todo:
            return False
        should_stop()
        job = self.todo.pop(0)
        self.frames.record_job(job.id, job.params, job.seed, "running")
        report = self.runner.run_job(self.recipe, self.base_dir, job, self.frames, self.scratch,
                                     should_stop=should_stop)
        # recorded done by the writer once the job's files are durable
        self.frames.record_job(job.id, job.params, job.seed, "done", frames=report.frames, stems=report.stems,
                               seconds=round(report.wall_seconds, 3))
        self.summary.jobs_rendered += 1
        self.summary.frames += report.frames
        self.summary.render_seconds += report.render_seconds
        return True

    def interrupted(self) -> None:
        self.summary.interrupted = True
        log.warning("interrupted: %d of %d jobs complete in %s; run the same command again to resume",
                    self.done, len(self.batch), self.out)

    def finish(self) -> RenderSummary:
        summary = self.summary
        try:
            self.frames.close()  # every job rendered is durable and recorded
        except BaseException:
            self.close()
            raise
        if summary.interrupted:
            self.writer.remove_leftovers()
        shutil.rmtree(self.scratch, ignore_errors=True)
        summary.seconds = time.perf_counter() - self._start
        summary.device = self.runner.device.kind if self.runner.device else ""
        self.writer.finalize({"jobs": len(self.writer.completed_jobs()), "jobs_requested": len(self.batch),
                              "frames_per_job": self.batch[0].frames,
                              "sensors": [v for v, _ in self.recipe.views()], "classes": self.runner.classes})
        try:
            if not summary.interrupted:
                summary.exports = export_for_recipe(self.recipe, self.base_dir, self.out)
        finally:
            self.close()
        return summary

    def close(self) -> None:
        """Write what is queued, then let other writers into the dataset folder (finish does this)."""
        if self.frames is not None:
            self.frames.close(raise_error=False)  # the jobs rendered so far are kept
        if self._lock is not None:
            self._lock.release()
            self._lock = None


class GracefulInterrupt:
    """The first Ctrl-C asks to stop at the next frame boundary (``check`` raises KeyboardInterrupt
    there); a second one interrupts at once. Only installed in the main thread."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("stopping after the current frame (Ctrl-C again to stop at once)")

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def _progress(progress, total: int, initial: int):
    if callable(progress):
        count = [initial]

        def call(step):
            if step:
                count[0] += step
                progress(count[0], total)
        return call
    if not progress:
        return lambda step: None
    from tqdm import tqdm

    bar = tqdm(total=total, initial=initial, unit="job", desc="render")
    return lambda step: bar.update(step) if step else bar.close()


__all__ = ["render", "load_source", "LocalBatch", "RenderSummary", "JobSpec"]
