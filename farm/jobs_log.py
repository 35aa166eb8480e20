"""The jobs.jsonl of the datasets the coordinator writes: one ``done`` line per job, ever.

Lines are appended after the database commit that made their jobs done (a crash in between loses a line,
never doubles one), and only for jobs the file does not hold yet. What the file lacks (a crash between
commit and write, a torn line, the file deleted) is rebuilt from the database: at start for every
dataset, and whenever the file turns out to be missing or replaced.
"""
from __future__ import annotations

import logging
import os
from collections import defaultdict
from pathlib import Path

from ..addon.core.dataset.native import DatasetWriter, job_record
from .store import Store

log = logging.getLogger(__name__)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino


class JobsLog:
    def __init__(self, store: Store):
        self.store = store
        self.pending: dict[str, list[dict]] = {}  # dataset folder -> lines waiting for the commit
        self._logged: dict[str, tuple[tuple[int, int] | None, set[int]]] = {}  # folder -> (file identity, done ids)

    def add(self, out: str, record: dict) -> None:
        self.pending.setdefault(out, []).append(record)

    def flush(self) -> None:
        """Append the pending lines (call after the commit); a dataset whose disk fails keeps them for later."""
        for out in list(self.pending):
            try:
                logged = self._ids(out, coming={r["id"] for r in self.pending[out]})
                new = {r["id"]: r for r in self.pending[out] if r["id"] not in logged}
                self._append(out, list(new.values()))
                del self.pending[out]
            except OSError as err:
                log.error("jobs.jsonl of %s: %s; trying again", out, err)

    def check_all(self) -> None:
        """At start: give every dataset on disk the lines its done jobs lack."""
        for out in self.store.outs():
            if Path(out).is_dir():
                try:
                    self._ids(out, rebuild=True)
                except OSError as err:
                    log.error("jobs.jsonl of %s: %s", out, err)

    def _ids(self, out: str, rebuild: bool = False, coming: set[int] = frozenset()) -> set[int]:
        """The job ids with a done line, read again (and completed, but for the ``coming`` ones) when the file is
        not the one last read."""
        path = Path(out) / "jobs.jsonl"
        identity = _identity(path)
        cached = self._logged.get(out)
        if cached is not None and cached[0] == identity and identity is not None and not rebuild:
            return cached[1]
        ids = {job for job, record in DatasetWriter(Path(out)).jobs().items() if record.get("status") == "done"}
        self._logged[out] = (identity, ids)
        self._rebuild(out, ids | coming)
        return ids

    def _rebuild(self, out: str, skip: set[int]) -> None:
        missing = []
        stems = None
        for batch in self.store.batches_of(out):
            for job_id, seconds in self.store.done_jobs(batch["id"]):
                if job_id in skip:
                    continue
                if stems is None:
                    stems = _stems(Path(out))
                params, seed = self.store.job_input(batch, job_id)
                missing.append(job_record(job_id, params, seed, "done", frames=batch["frames"],
                                          stems=sorted(stems.get(job_id, [])), seconds=seconds, rebuilt=True))
        if missing:
            log.warning("jobs.jsonl of %s lacked %d done jobs; written from the farm's state", out, len(missing))
            self._append(out, missing)

    def _append(self, out: str, records: list[dict]) -> None:
        if not records:
            return
        DatasetWriter(Path(out)).record_jobs(records)
        identity, ids = self._logged[out]
        ids.update(r["id"] for r in records)
        self._logged[out] = (_identity(Path(out) / "jobs.jsonl"), ids)


def _stems(out: Path) -> dict[int, list[str]]:
    """Frame stems on disk, by job id (one listing of the annotations folder)."""
    stems: dict[int, list[str]] = defaultdict(list)
    try:
        entries = list(os.scandir(out / "annotations"))
    except FileNotFoundError:
        return stems
    for entry in entries:
        name = entry.name
        if name.endswith("-ann.json") and name[:10].isdigit():
            stems[int(name[:10])].append(name.removesuffix("-ann.json"))
    return stems
