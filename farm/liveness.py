"""The coordinator's watch over its workers (a mixin of :class:`~.coordinator.Coordinator`): who was heard from
and when, and the check that runs once per heartbeat: workers silent for ``lost_after`` seconds are lost (their
attempts go back to the queue), running attempts without progress for their ``hang_after`` are cancelled and
failed, paused batches whose disk has room again resume, and abandoned uploads (and, at start, the staging folders
of attempts that are not out) are deleted."""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from . import protocol as p
from .landing import discard_staging, staging_dir

log = logging.getLogger(__name__)


class Liveness:
    def _heard(self, identity: bytes) -> None:
        if identity not in self._seen:
            self._live_ids.add(identity.decode(errors="replace"))
        self._seen[identity] = time.monotonic()

    def _not_heard(self, identity: bytes) -> None:
        if self._seen.pop(identity, None) is not None:
            self._live_ids.discard(identity.decode(errors="replace"))

    def _live(self) -> set[str]:
        """The workers heard from within ``lost_after`` (the caller must not change the set)."""
        return self._live_ids

    def _check_liveness(self) -> None:
        now_mono, now = time.monotonic(), time.time()
        self._last_check = now_mono
        self._resume_paused()
        if now_mono - self._last_sweep > min(60.0, self.settings.upload_idle_seconds / 2):
            self._sweep()
        for identity, seen in list(self._seen.items()):
            worker_id = identity.decode(errors="replace")
            self.store.worker_seen(worker_id, status=self.store.worker_status(worker_id) or "idle", force=True)
            if now_mono - seen > self.lost_after:
                log.warning("worker %s lost (silent for %.0f s); requeueing its work", worker_id, now_mono - seen)
                for attempt in self.store.running_attempts(worker_id):
                    self._lose(attempt["id"], "worker lost")
                self.store.worker_seen(worker_id, status="lost")
                self._not_heard(identity)
        for worker_id in self.store.forget_workers(now - self.settings.forget_workers_after):
            self._known.discard(worker_id.encode())
        for attempt in self.store.running_attempts():
            if attempt["status"] != "running":  # held ahead: its clock starts when the worker starts it
                continue
            batch = self.store.batch(attempt["batch_id"])
            limit = (batch["hang_after"] if batch else 0) or self.hang_after
            if now - attempt["progressed"] > limit:
                self._hung(attempt, batch, limit)

    def _hung(self, attempt: dict, batch: dict | None, limit: float) -> None:
        """A worker that heartbeats but finished no frame for ``limit`` seconds: a failed attempt (so a frame that
        always takes longer ends in a failed job with this message, not in an endless loop of attempts)."""
        log.warning("attempt %s hung (no progress for %.0f s); cancelling it", attempt["id"], limit)
        error = (f"no frame finished in {limit:.0f} s while the worker was alive (hung, or a frame longer than "
                 "that: set farm.hang_after in the recipe, or the coordinator's --hang-after)")
        outcome = self.store.finish(attempt["id"], attempt["worker_id"], False, error, attempt=self.store.attempt(
            attempt["id"]), live=self._live())
        if batch:
            discard_staging(staging_dir(batch["out"], attempt["id"]))
        self._send("workers", attempt["worker_id"].encode(), "CANCEL", p.Cancel(attempt_id=attempt["id"]))
        if batch:
            self._event(batch["id"], kind="job", job=attempt["job_id"], outcome=outcome, error=error)
            if outcome != "retry":
                self._ended.add(batch["id"])

    def _resume_paused(self) -> None:
        for batch in self.store.paused():
            try:
                free = shutil.disk_usage(batch["out"]).free
            except OSError:
                continue
            if free >= self.settings.min_free_bytes:
                log.info("batch %s resumes: %.0f MB free on its disk", batch["id"], free / 1e6)
                self.store.resume(batch["id"])
                self._event(batch["id"], kind="batch", status="resumed")

    def _sweep(self, start: bool = False) -> None:
        """Delete what nobody will finish: half uploads idle for ``upload_idle_seconds``, and (at start) the
        staging folders of attempts that are no longer running."""
        self._last_sweep = time.monotonic()
        removed = self.transfer.sweep(self.settings.upload_idle_seconds)
        if removed:
            log.info("deleted %d abandoned uploads", removed)
        if not start:
            return
        running = {a["id"] for a in self.store.running_attempts()}
        for batch_id in self.store.batch_ids():
            staging = Path(self.store.batch(batch_id)["out"]) / ".staging"
            if staging.is_dir() and not staging.is_symlink():
                for folder in staging.iterdir():
                    if folder.name not in running:
                        shutil.rmtree(folder, ignore_errors=True)
