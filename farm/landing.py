"""An attempt's staging folder, and the landing of a coordinator cycle's successful attempts.

A worker stages an attempt's frames in ``<out>/.staging/<attempt id>``, durable there (its writer fsyncs them; the
transfer server fsyncs an upload's file when it ends). The coordinator does not commit a success when its DONE
arrives: the attempt is ``landing`` (leases.py) until the cycle's messages are handled and committed (their
replies, the workers' next tasks, leave then: they do not wait for these files), then each dataset gets one
durable group for all of the cycle's successes (``DatasetWriter.commit_stagings``: renames, each folder fsynced once,
the annotations last), and only then are they recorded done, in the cycle's state commit, with their jobs.jsonl lines
written after it: files, then state, then the jobs log. A crash before that commit leaves them ``landing``: lost at
the next start, their jobs run again, whose identical files overwrite any that landed.

The emptied staging folders are removed by a thread of their own, off the cycle's way (a crash leaves them to the
coordinator's start-up sweep, which removes every staging folder of an attempt that is not out).
"""
from __future__ import annotations

import contextlib
import logging
import os
import queue
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..addon.core.dataset.native import DatasetWriter
from .paths import Staged, StagingRefused, vet_folders, written_folders

log = logging.getLogger(__name__)


def staging_dir(out: str, attempt_id: str) -> str:
    return f"{out.rstrip('/')}/.staging/{attempt_id}"  # no os.path.join: this runs twice per job


def discard_staging(path: str) -> None:
    """Delete an attempt's staging folder; a link in its place is removed, never followed."""
    if os.path.islink(path):
        os.unlink(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


def remove_landed(staging: str, staged: Staged) -> None:
    """Remove a staging folder whose files the commit moved out, by the names its vetting listed (no walk): its own
    files (the attempt's dataset.yaml and recipe.yaml), then its emptied folders, then itself, all relative to the
    folder opened without following a link. Anything else there (a folder not empty: a model the dataset had, a
    folder in a folder, something written after it was vetted; or a link in its place) and it is removed as a
    whole, a link never followed."""
    try:
        fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return
    except OSError:
        return discard_staging(staging)  # a link in its place (removed, never followed)
    try:
        for name in staged.get("", ()):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=fd)
        for folder in staged:
            if "/" in folder:
                raise IsADirectoryError(folder)  # not a layout the commit empties: removed as a whole
            if folder:
                os.rmdir(folder, dir_fd=fd)
        os.rmdir(staging)
    except OSError:
        discard_staging(staging)
    finally:
        os.close(fd)


@dataclass
class Arrival:
    """A success waiting for its files to land: what its jobs.jsonl line and its end need."""
    attempt: dict  # id, batch_id, job_id, worker_id
    out: str
    staging: str
    files: Staged  # what its staging folder holds (as vetted)
    params: dict
    seed: int
    frames: int
    seconds: float
    device: str
    stems: list[str] = field(default_factory=list)  # the frames committed (known once landed)


class Landing:
    def __init__(self):
        self.arrivals: list[Arrival] = []  # this cycle's, in arrival order
        self._removals: queue.SimpleQueue = queue.SimpleQueue()
        self._remover: threading.Thread | None = None

    def add(self, arrival: Arrival) -> None:
        self.arrivals.append(arrival)

    def land(self) -> list[tuple[list[Arrival], Exception | None]]:
        """Commit the waiting arrivals' files, one durable group per dataset: [(arrivals, the group's error or
        None)]: an OSError, or StagingRefused when a dataset folder the group writes into is a link or no folder
        (looked at once per group, right before its renames). The staging folders of a group that landed are
        removed later; those of one that failed are left to the caller."""
        by_out: dict[str, list[Arrival]] = {}
        for arrival in self.arrivals:
            by_out.setdefault(arrival.out, []).append(arrival)
        self.arrivals = []
        landed = []
        for out, arrivals in by_out.items():
            try:
                vet_folders(out, set().union(*(written_folders(a.files) for a in arrivals)))
                stems = DatasetWriter(Path(out)).commit_stagings([(a.staging, a.files) for a in arrivals])
            except StagingRefused as err:
                log.warning("the frames of %d finished jobs are refused: %s", len(arrivals), err)
                landed.append((arrivals, err))
                continue
            except OSError as err:
                log.error("the frames of %d finished jobs could not be committed to %s: %s", len(arrivals), out, err)
                landed.append((arrivals, err))
                continue
            for arrival, its_stems in zip(arrivals, stems):
                arrival.stems = its_stems
            self._remove([(a.staging, a.files) for a in arrivals])
            landed.append((arrivals, None))
        return landed

    def _remove(self, work) -> None:
        if self._remover is None:
            self._remover = threading.Thread(target=self._run, name="synthfarm-staging-remover", daemon=True)
            self._remover.start()
        self._removals.put(work)

    def _run(self) -> None:
        while (work := self._removals.get()) is not None:
            self._do(work)

    @staticmethod
    def _do(work) -> None:
        if isinstance(work, threading.Event):
            work.set()
            return
        for staging, staged in work:
            remove_landed(staging, staged)

    def flush(self, timeout: float = 30.0) -> None:
        """Remove the staging folders queued so far: this thread takes over what the remover has not begun (each
        folder removed once, by whichever takes it), then waits (at most ``timeout`` seconds) for the group the
        remover holds. A batch's end then removes only what is left, without redoing the remover's work."""
        if self._remover is None:
            return
        while True:
            try:
                work = self._removals.get_nowait()
            except queue.Empty:
                break
            self._do(work)
        done = threading.Event()
        self._removals.put(done)
        done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Remove what is queued (waiting at most ``timeout`` seconds), then end the remover."""
        if self._remover is not None:
            self._removals.put(None)
            self._remover.join(timeout)
            self._remover = None
