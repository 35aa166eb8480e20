"""The farm's state in SQLite (WAL): batches, jobs, attempts, workers, failures and blocks.

The coordinator is the only writer. Every transition is committed before it is announced: callers
group the transitions of one poll cycle and call :meth:`Store.commit` before sending replies.
Job rows of a batch are created in one bulk insert from the batch's seed and count, so a submission of
a million jobs is one statement, not a million messages; the jobs of each status are counted as they
change (a trigger keeps ``counts``), so a batch's status costs the same at any size.
A damaged file is detected when it is opened (StoreDamaged says how to rebuild it: ``recovery.py``).
"""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from ..addon.core.jobs import job_seed
from .leases import BY_STATUS, Leases

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
  id TEXT PRIMARY KEY, name TEXT, recipe TEXT, recipe_dir TEXT, out TEXT, count INTEGER, seed INTEGER,
  params TEXT, frames INTEGER, preview INTEGER, priority INTEGER, status TEXT, created REAL,
  inputs TEXT DEFAULT '{}', recipe_path TEXT DEFAULT '', recipe_hash TEXT DEFAULT '');
CREATE TABLE IF NOT EXISTS jobs (
  batch_id TEXT, job_id INTEGER, status TEXT, attempts INTEGER DEFAULT 0, error TEXT DEFAULT '',
  seconds REAL, params TEXT, seed INTEGER, PRIMARY KEY (batch_id, job_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (batch_id, status, job_id);
CREATE TABLE IF NOT EXISTS attempts (
  id TEXT PRIMARY KEY, batch_id TEXT, job_id INTEGER, worker_id TEXT, status TEXT, started REAL,
  progressed REAL, finished REAL, error TEXT DEFAULT '');
CREATE INDEX IF NOT EXISTS attempts_running ON attempts (status, worker_id);
CREATE TABLE IF NOT EXISTS workers (id TEXT PRIMARY KEY, host TEXT, device TEXT, status TEXT, last_seen REAL);
CREATE TABLE IF NOT EXISTS failures (batch_id TEXT, job_id INTEGER, worker_id TEXT,
  PRIMARY KEY (batch_id, job_id, worker_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blocks (batch_id TEXT, worker_id TEXT, PRIMARY KEY (batch_id, worker_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS attempts_job ON attempts (batch_id, job_id);
CREATE TABLE IF NOT EXISTS requirements (batch_id TEXT PRIMARY KEY, requires TEXT);
CREATE TABLE IF NOT EXISTS capabilities (worker_id TEXT PRIMARY KEY, caps TEXT);
CREATE TABLE IF NOT EXISTS attempt_logs (attempt_id TEXT PRIMARY KEY, log TEXT);
CREATE TABLE IF NOT EXISTS counts (batch_id TEXT, status TEXT, n INTEGER, PRIMARY KEY (batch_id, status)) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS count_status AFTER UPDATE OF status ON jobs WHEN old.status IS NOT new.status BEGIN
  UPDATE counts SET n = n - 1 WHERE batch_id = old.batch_id AND status = old.status;
  INSERT INTO counts VALUES (new.batch_id, new.status, 1) ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""
WORKER_ROW = ("INSERT INTO workers VALUES (?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET status=excluded.status, "
              "last_seen=excluded.last_seen, host=CASE WHEN excluded.host='' THEN host ELSE excluded.host END, "
              "device=CASE WHEN excluded.device='' THEN device ELSE excluded.device END")
STATUSES = ("queued", "running", "done", "failed", "cancelled")
COLUMNS = {  # added after the first release: (table, column, declaration), added to older files at start
    ("jobs", "failures", "INTEGER DEFAULT 0"),  # failed attempts of the job
    ("batches", "paused", "TEXT DEFAULT ''"),  # why dispatch of the batch waits (out of space), or ''
    ("batches", "hang_after", "REAL DEFAULT 0"),  # the recipe's farm.hang_after (0: the coordinator's)
}


class StoreError(Exception):
    pass


class StoreDamaged(StoreError):
    """The state file is not a sound SQLite database."""


class Store(Leases):
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), isolation_level="DEFERRED", check_same_thread=False)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            problem = self.db.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as err:
            problem = str(err)
        if problem != "ok":
            self.db.close()
            raise StoreDamaged(f"the farm's state {self.path} is damaged ({problem[:200]}); start the coordinator once "
                               f"with --recover (synthfarm coordinator --data {self.path.parent} --recover ...): it "
                               "moves the file aside, keeps what is readable and takes the finished jobs from the "
                               "datasets on disk")
        self.db.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes; WAL keeps it consistent
        self.db.executescript(SCHEMA)
        for table, column, declaration in COLUMNS:
            if column not in {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        self._lose_landing()
        if self.db.execute("SELECT 1 FROM meta WHERE key='counts'").fetchone() is None:  # an older file: count once
            self.recount()
            self.db.execute("INSERT INTO meta VALUES ('counts', '1')")
        self.db.commit()
        # the failure policy (the coordinator sets these from its settings)
        self.max_attempts, self.distinct_workers, self.block_after = 3, 3, 3
        self._batches: dict[str, dict] = {}  # rows of batches, dropped whenever one changes
        self._active: list[str] | None = None  # active batch ids in dispatch order
        self._with_failures = {r[0] for r in self.db.execute("SELECT DISTINCT batch_id FROM failures")}
        self._workers: dict[str, str] = {}  # worker id -> last status given
        self._statuses: dict[str, tuple] = {}  # worker id -> its workers row, written at the commit (one per cycle)
        self._init_leases()

    def _lose_landing(self) -> None:
        """Attempts left ``landing`` (leases.py: by a coordinator that stopped, or whose state could not be written,
        between a cycle's two commits): lost, their jobs requeued (they run again; their files, if they landed, are
        overwritten)."""
        self.db.execute("UPDATE jobs SET status='queued' WHERE status='running' AND (batch_id, job_id) IN (SELECT "
                        "batch_id, job_id FROM attempts WHERE status='landing')")
        self.db.execute("UPDATE attempts SET status='lost', error='its end was not recorded' WHERE status='landing'")

    def commit(self) -> None:
        self.flush_ends()
        self._write_statuses()
        self.db.commit()

    def probe(self) -> None:
        """A small write and commit: raises sqlite3.Error while the state's disk is full. Once it passes, the
        attempts a failed cycle left ``landing`` are lost (their jobs run again)."""
        self._lose_landing()
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('alive', ?)", (str(time.time()),))
        self.db.commit()

    def recount(self) -> None:
        """Rebuild ``counts`` from the jobs themselves."""
        self.db.execute("DELETE FROM counts")
        self.db.execute("INSERT INTO counts SELECT batch_id, status, COUNT(*) FROM jobs GROUP BY batch_id, status")

    def request(self) -> "Request":
        """One message's transitions: kept when it is handled, undone (caches too) when it raises."""
        return Request(self)

    def reset_caches(self) -> None:
        """Forget what is kept in memory; it is read again from the tables."""
        self._reset_leases()
        self._changed()
        self._workers.clear()
        self._statuses.clear()
        self._with_failures = {r[0] for r in self.db.execute("SELECT DISTINCT batch_id FROM failures")}

    def close(self) -> None:
        self.commit()
        self.db.close()

    # -- batches ----------------------------------------------------------------------------------------
    def submit(self, batch_id: str, *, name: str, recipe: str, recipe_dir: str, out: str, count: int, seed: int,
               params: dict, frames: int, preview: bool, priority: int, inputs: dict | None = None,
               recipe_path: str = "", recipe_hash: str = "", jobs: list[tuple[dict, int]] | None = None,
               hang_after: float = 0.0) -> tuple[dict, bool]:
        """Create a batch and its jobs; the same id again returns the existing batch (idempotent).
        ``jobs``: (params, seed) per job when jobs differ; else every job takes ``params`` and a seed
        derived from ``seed`` and its number."""
        existing = self.batch(batch_id)
        if existing is not None:
            return existing, False
        self.db.execute("INSERT INTO batches (id, name, recipe, recipe_dir, out, count, seed, params, frames, preview, "
                        "priority, status, created, inputs, recipe_path, recipe_hash, hang_after) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (batch_id, name, recipe, recipe_dir, out, count, seed, json.dumps(params), frames,
                         int(preview), priority, "active", time.time(), json.dumps(inputs or {}), recipe_path,
                         recipe_hash, hang_after))
        if jobs:
            self.db.executemany("INSERT INTO jobs (batch_id, job_id, status, params, seed) VALUES (?,?,'queued',?,?)",
                                ((batch_id, i, json.dumps(p), s) for i, (p, s) in enumerate(jobs)))
        else:
            self.db.executemany("INSERT INTO jobs (batch_id, job_id, status) VALUES (?, ?, 'queued')",
                                ((batch_id, i) for i in range(count)))
        self.db.execute("INSERT INTO counts VALUES (?, 'queued', ?)", (batch_id, count))  # inserts are not counted
        self._changed(batch_id)
        return self.batch(batch_id), True

    def _changed(self, batch_id: str | None = None) -> None:
        self._batches.pop(batch_id, None) if batch_id else self._batches.clear()
        self._active = None

    def batch(self, batch_id: str) -> dict | None:
        if batch_id in self._batches:
            return self._batches[batch_id]
        row = self.db.execute("SELECT id, name, recipe, recipe_dir, out, count, seed, params, frames, preview, "
                              "priority, status, created, inputs, recipe_path, paused, hang_after FROM batches "
                              "WHERE id=?", (batch_id,)).fetchone()
        if row is None:
            return None
        keys = ("id", "name", "recipe", "recipe_dir", "out", "count", "seed", "params", "frames", "preview",
                "priority", "status", "created", "inputs", "recipe_path", "paused", "hang_after")
        batch = dict(zip(keys, row))
        batch["params"], batch["preview"] = json.loads(batch["params"]), bool(batch["preview"])
        batch["inputs"] = json.loads(batch["inputs"])
        self._batches[batch_id] = batch
        return batch

    def batch_ids(self, newest: int | None = None) -> list[str]:
        """Batch ids, oldest first; with ``newest``, only that many of the most recent."""
        if newest is None:
            return [row[0] for row in self.db.execute("SELECT id FROM batches ORDER BY created")]
        return [row[0] for row in self.db.execute("SELECT id FROM batches ORDER BY created DESC LIMIT ?",
                                                  (newest,))][::-1]

    def summary(self, batch_id: str) -> dict:
        batch = self.batch(batch_id)
        if batch is None:
            raise StoreError(f"no batch {batch_id!r}")
        counts = dict(self.db.execute("SELECT status, n FROM counts WHERE batch_id=?", (batch_id,)).fetchall())
        errors = [{"job_id": j, "error": e} for j, e in self.db.execute(
            f"SELECT job_id, error FROM jobs {BY_STATUS} WHERE batch_id=? AND status='failed' ORDER BY job_id LIMIT 20",
            (batch_id,))]
        blocked = [r[0] for r in self.db.execute("SELECT worker_id FROM blocks WHERE batch_id=? ORDER BY worker_id "
                                                 "LIMIT 20", (batch_id,))]
        held = self.held(batch_id) if counts.get("running") else 0  # out on a worker, not started: waiting there
        counts["queued"], counts["running"] = counts.get("queued", 0) + held, counts.get("running", 0) - held
        return {k: batch[k] for k in ("id", "name", "out", "count", "priority", "status", "created", "paused")} | {
            "jobs": {s: counts.get(s, 0) for s in STATUSES}, "held": held,
            "errors": errors, "blocked": blocked}

    def set_priority(self, batch_id: str, priority: int) -> None:
        self._require(batch_id)
        self.db.execute("UPDATE batches SET priority=? WHERE id=?", (priority, batch_id))
        self._changed(batch_id)

    def cancel(self, batch_id: str) -> list[tuple[str, str]]:
        """Cancel a batch: queued jobs are cancelled; returns (attempt, worker) pairs to stop."""
        self._require(batch_id)
        self.db.execute("UPDATE batches SET status='cancelled' WHERE id=?", (batch_id,))
        self._changed(batch_id)
        self.db.execute("UPDATE jobs SET status='cancelled' WHERE batch_id=? AND status IN ('queued','running')",
                        (batch_id,))
        self.flush_ends()
        running = self.db.execute("SELECT id, worker_id, job_id FROM attempts WHERE batch_id=? AND status IN "
                                  "('leased','running')", (batch_id,)).fetchall()
        for attempt_id, worker_id, job_id in running:
            self._forget({"id": attempt_id, "worker_id": worker_id, "batch_id": batch_id, "job_id": job_id})
        self.db.execute("UPDATE attempts SET status='cancelled', finished=? WHERE batch_id=? AND status IN "
                        "('leased','running')", (time.time(), batch_id))
        self._queues.pop(batch_id, None)
        return [(attempt_id, worker_id) for attempt_id, worker_id, _ in running]

    def retry(self, batch_id: str) -> int:
        """Requeue the failed (and cancelled) jobs of a batch; forgets their failures and blocks."""
        self._require(batch_id)
        self.db.execute("UPDATE batches SET status='active', paused='' WHERE id=?", (batch_id,))
        self._changed(batch_id)
        self._with_failures.discard(batch_id)
        n = self.db.execute("UPDATE jobs SET status='queued', error='', failures=0 WHERE batch_id=? AND status IN "
                            "('failed','cancelled')", (batch_id,)).rowcount
        self.db.execute("DELETE FROM failures WHERE batch_id=?", (batch_id,))
        self.db.execute("DELETE FROM blocks WHERE batch_id=?", (batch_id,))
        self._queues.pop(batch_id, None)
        return n

    def pause(self, batch_id: str, why: str) -> bool:
        """Hold a batch's dispatch (its dataset's disk is full); True when it was not paused before."""
        if self.batch(batch_id)["paused"]:
            return False
        self.db.execute("UPDATE batches SET paused=? WHERE id=?", (why, batch_id))
        self._changed(batch_id)
        return True

    def resume(self, batch_id: str) -> None:
        self.db.execute("UPDATE batches SET paused='' WHERE id=?", (batch_id,))
        self._changed(batch_id)

    def paused(self) -> list[dict]:
        return [self.batch(r[0]) for r in self.db.execute("SELECT id FROM batches WHERE paused != '' AND "
                                                         "status='active'")]

    def _require(self, batch_id: str) -> None:
        if self.batch(batch_id) is None:
            raise StoreError(f"no batch {batch_id!r}")

    # -- jobs ------------------------------------------------------------------------------------------
    def jobs(self, batch_id: str, offset: int = 0, limit: int = 1000) -> list[dict]:
        """Up to ``limit`` jobs of a batch from job id ``offset`` on, with their inputs, status and time (for the
        batch API, page by page)."""
        batch = self.batch(batch_id)
        if batch is None:
            raise StoreError(f"no batch {batch_id!r}")
        out = []
        for job_id, status, params, seed, seconds, error in self.db.execute(
                "SELECT job_id, status, params, seed, seconds, error FROM jobs WHERE batch_id=? AND job_id>=? "
                "ORDER BY job_id LIMIT ?", (batch_id, offset, limit)):
            params, seed = (json.loads(params), seed) if params is not None else (batch["params"],
                                                                                 job_seed(batch["seed"], job_id))
            out.append({"job_id": job_id, "status": status, "params": params, "seed": seed, "seconds": seconds,
                        "error": error})
        return out

    def seconds_per_frame(self, recipe_hash: str, preview: bool) -> tuple[float, int] | None:
        """Mean render seconds per frame of finished jobs of this recipe and tier, and how many jobs."""
        row = self.db.execute("SELECT AVG(j.seconds / b.frames), COUNT(*) FROM jobs j JOIN batches b ON "
                              "j.batch_id = b.id WHERE b.recipe_hash=? AND b.preview=? AND j.status='done' AND "
                              "j.seconds > 0", (recipe_hash, int(preview))).fetchone()
        return (float(row[0]), int(row[1])) if row and row[1] else None

    def batch_finished(self, batch_id: str) -> bool:
        return not self.db.execute("SELECT COALESCE(SUM(n), 0) FROM counts WHERE batch_id=? AND status IN "
                                   "('queued','running')", (batch_id,)).fetchone()[0]

    def outs(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT out FROM batches")]

    def batches_of(self, out: str) -> list[dict]:
        return [self.batch(r[0]) for r in self.db.execute("SELECT id FROM batches WHERE out=?", (out,))]

    def done_jobs(self, batch_id: str) -> list[tuple[int, float | None]]:
        """(job id, seconds) of a batch's done jobs."""
        return self.db.execute(f"SELECT job_id, seconds FROM jobs {BY_STATUS} WHERE batch_id=? AND status='done' "
                               "ORDER BY job_id",
                               (batch_id,)).fetchall()

    # -- workers ----------------------------------------------------------------------------------------
    def worker_seen(self, worker_id: str, host: str = "", device: str = "", status: str = "idle",
                    force: bool = False) -> None:
        """Record a worker's status; the heartbeat-time refresh is written at most when ``force``. A change of status
        alone is written with the cycle's commit (the last of the cycle: one row per worker and cycle)."""
        if not force and not host and self._workers.get(worker_id) == status:
            return
        self._workers[worker_id] = status
        row = (worker_id, host, device, status, time.time())
        if host or device:  # a worker's HELLO: at once, after any status given before it
            self._statuses.pop(worker_id, None)
            self.db.execute(WORKER_ROW, row)
        else:
            self._statuses[worker_id] = row

    def _write_statuses(self) -> None:
        if self._statuses:
            self.db.executemany(WORKER_ROW, list(self._statuses.values()))
            self._statuses.clear()

    def worker_status(self, worker_id: str) -> str | None:
        return self._workers.get(worker_id)

    def forget_workers(self, before: float) -> list[str]:
        """Delete the rows of workers lost or gone before ``before`` (epoch seconds) that run nothing."""
        self._write_statuses()
        gone = [r[0] for r in self.db.execute(
            "SELECT id FROM workers WHERE status IN ('lost','gone') AND last_seen < ? AND id NOT IN "
            "(SELECT worker_id FROM attempts WHERE status IN ('leased','running'))", (before,))]
        for worker_id in gone:
            self.db.execute("DELETE FROM workers WHERE id=?", (worker_id,))
            self._workers.pop(worker_id, None)
            self._out.pop(worker_id, None)
        return gone

    def workers(self) -> list[dict]:
        self._write_statuses()
        rows = self.db.execute("SELECT id, host, device, status, last_seen FROM workers ORDER BY id")
        return [dict(zip(("id", "host", "device", "status", "last_seen"), r)) for r in rows]

    def job_ids(self, batch_id: str, status: str) -> list[int]:
        return [r[0] for r in self.db.execute(f"SELECT job_id FROM jobs {BY_STATUS} WHERE batch_id=? AND status=? "
                                              "ORDER BY job_id",
                                              (batch_id, status))]

    def job_seed(self, batch: dict, job_id: int) -> int:
        return job_seed(batch["seed"], job_id)

    # -- requirements, capabilities and task logs ------------------------------------------------------------
    def set_requires(self, batch_id: str, requires: dict) -> None:
        self.db.execute("INSERT OR REPLACE INTO requirements VALUES (?,?)", (batch_id, json.dumps(requires)))

    def requires(self, batch_id: str) -> dict:
        row = self.db.execute("SELECT requires FROM requirements WHERE batch_id=?", (batch_id,)).fetchone()
        return json.loads(row[0]) if row else {}

    def set_capabilities(self, worker_id: str, caps: dict) -> None:
        self.db.execute("INSERT OR REPLACE INTO capabilities VALUES (?,?)", (worker_id, json.dumps(caps)))

    def capabilities(self) -> dict[str, dict]:
        return {w: json.loads(c) for w, c in self.db.execute("SELECT worker_id, caps FROM capabilities")}

    def save_log(self, attempt_id: str, text: str) -> None:
        if text:
            self.db.execute("INSERT OR REPLACE INTO attempt_logs VALUES (?,?)", (attempt_id, text))

    def attempts_of(self, batch_id: str, job_id: int) -> list[dict]:
        """Every attempt of a job, oldest first, with its worker, outcome, error and the end of its log."""
        self._require(batch_id)
        rows = self.db.execute("SELECT a.id, a.worker_id, a.status, a.started, a.finished, a.error, l.log FROM "
                               "attempts a LEFT JOIN attempt_logs l ON l.attempt_id = a.id WHERE a.batch_id=? AND "
                               "a.job_id=? ORDER BY a.started", (batch_id, job_id))
        keys = ("id", "worker_id", "status", "started", "finished", "error", "log")
        return [dict(zip(keys, (*r[:6], r[6] or ""))) for r in rows]

    def last_attempts(self, batch_id: str, first: int, last: int, log_chars: int = 2000) -> dict[int, dict]:
        """For jobs ``first``..``last`` of a batch: how many attempts, the latest one's worker and its log's end."""
        out: dict[int, dict] = {}
        for job_id, worker_id, log in self.db.execute(
                "SELECT a.job_id, a.worker_id, l.log FROM attempts a LEFT JOIN attempt_logs l ON l.attempt_id = a.id "
                "WHERE a.batch_id=? AND a.job_id BETWEEN ? AND ? ORDER BY a.started", (batch_id, first, last)):
            entry = out.setdefault(job_id, {"attempts": 0})
            entry.update(attempts=entry["attempts"] + 1, worker=worker_id, log_tail=(log or "")[-log_chars:])
        return out



class Request:
    """The context of :meth:`Store.request`: a savepoint around one message (a class, not a generator: it runs
    for every message the coordinator handles)."""
    __slots__ = ("store", "statuses")

    def __init__(self, store: Store):
        self.store = store

    def __enter__(self) -> None:
        db = self.store.db
        if not db.in_transaction:
            db.execute("BEGIN")
        db.execute("SAVEPOINT request")
        self.statuses = dict(self.store._statuses)

    def __exit__(self, kind, err, trace) -> bool:
        if kind is None:
            try:
                self.store.flush_ends()  # the message's successful ends, written inside its savepoint
            except Exception:
                self._undo()
                raise
            self.store.db.execute("RELEASE request")
            return False
        self._undo()
        return False

    def _undo(self) -> None:
        store = self.store
        try:
            store.db.execute("ROLLBACK TO request")
            store.db.execute("RELEASE request")
            undone = False
        except sqlite3.Error:  # SQLite already rolled the whole transaction back (a full disk, say)
            store.db.rollback()
            undone = True
        store.reset_caches()
        if not undone:  # the statuses given by the cycle's earlier messages still stand
            store._statuses = self.statuses
