"""Rebuilding a damaged farm state (``synthfarm coordinator --recover``): the file is moved aside, every row
still readable is kept, and what the datasets on disk hold decides which jobs are done."""
from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from ..addon.core.dataset.native import DatasetWriter
from .store import Store

log = logging.getLogger(__name__)
TABLES = ("batches", "jobs", "attempts", "workers", "failures", "blocks")


def _salvage(old: sqlite3.Connection, new: sqlite3.Connection, table: str) -> int:
    """Copy the readable rows of ``table``; a damaged page ends the copy of that table, not the recovery."""
    columns = [r[1] for r in new.execute(f"PRAGMA table_info({table})")]
    try:
        present = [r[1] for r in old.execute(f"PRAGMA table_info({table})")]
        names = [c for c in columns if c in present]
        cursor = old.execute(f"SELECT {', '.join(names)} FROM {table}")
    except sqlite3.DatabaseError as err:
        log.warning("%s: unreadable (%s)", table, err)
        return 0
    copied = 0
    while True:
        try:
            row = cursor.fetchone()
        except sqlite3.DatabaseError as err:
            log.warning("%s: %d rows read, the rest is damaged (%s)", table, copied, err)
            break
        if row is None:
            break
        new.execute(f"INSERT OR IGNORE INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", row)
        copied += 1
    return copied


def recover(data_dir: Path) -> str:
    """Move ``farm.sqlite`` aside and build a new one from what can be read of it and from the datasets on disk.
    Returns a line saying what was kept."""
    path = Path(data_dir) / "farm.sqlite"
    aside = path.with_name(f"farm.sqlite.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            Path(f"{path}{suffix}").rename(f"{aside}{suffix}")
    store = Store(path)
    kept = {}
    if aside.exists():
        old = sqlite3.connect(f"file:{aside}?mode=ro", uri=True)
        try:
            kept = {table: _salvage(old, store.db, table) for table in TABLES}
        finally:
            old.close()
    db = store.db
    db.execute("UPDATE attempts SET status='lost', error='the state was recovered' WHERE status IN ('leased', 'running')")
    for batch_id in store.batch_ids():
        batch = store.batch(batch_id)
        db.executemany("INSERT OR IGNORE INTO jobs (batch_id, job_id, status) VALUES (?, ?, 'queued')",
                       ((batch_id, j) for j in range(batch["count"])))
        done = DatasetWriter(Path(batch["out"])).completed_jobs() if Path(batch["out"]).is_dir() else set()
        db.execute("UPDATE jobs SET status='queued' WHERE batch_id=? AND status IN ('running', 'done')", (batch_id,))
        db.executemany("UPDATE jobs SET status='done' WHERE batch_id=? AND job_id=?", ((batch_id, j) for j in done))
    store.recount()
    store.close()
    return (f"moved the damaged state to {aside.name}; kept " + ", ".join(f"{n} {t}" for t, n in kept.items())
            + "; finished jobs taken from the datasets on disk (a batch that was lost: submit it again into the same "
            "--out, its finished jobs are kept)")
