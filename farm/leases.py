"""Attempts from their lease to their end: the dispatch half of :class:`~.store.Store` (a mixin of it).

An attempt is *out* on a worker from its lease until it ends: ``leased`` while the worker holds it ahead (its
Blender child renders an earlier one), ``running`` once the worker started it (the first task of a worker that
held nothing starts at once; a held one when a HEARTBEAT, PROGRESS or DONE names it). Its job is ``running``
in the jobs table either way (out of the queue: nobody else may take it); status shows the held ones with the
queued jobs (:meth:`Leases.held`). Only running attempts can hang; a worker that leaves, goes silent or no longer
names an attempt in its REQUEST loses every attempt it holds, and their jobs go back to the queue.

A success whose files are still to be made durable is ``landing`` (:meth:`Leases.land`): no longer out (a second
result for it is stale, its worker's REQUEST need not name it, nothing loses or cancels it), not done until the
coordinator's cycle has committed its files (``finish(..., landing=True)``). It lasts within one cycle: committed
``landing`` by the cycle's first commit (the one before its tasks go out), ended by its second (after the files);
one left ``landing`` (a crash, or the state's disk failing, in between) is lost and its job runs again
(``Store._lose_landing``).

What only the coordinator writes is kept in memory from lease to end (the attempts out, their jobs' inputs, the
attempts out on each worker); landings and successful ends of one message are written together when it is done
(:meth:`Leases.flush_ends`, before its savepoint is released, so before anything is committed or announced).
"""
from __future__ import annotations

import json
import secrets
import time
from collections import deque

from ..addon.core.jobs import job_seed

OUT = ("leased", "running")  # attempt statuses of an attempt that is out on a worker
LANDING = "landing"  # a success whose files the coordinator's cycle commits (see the module's doc)
# jobs of one status in job order: without this the planner walks the whole batch by primary key to keep the order
BY_STATUS = "INDEXED BY jobs_queue"
KEYS = ("id", "batch_id", "job_id", "worker_id", "status")


class Leases:
    def _init_leases(self) -> None:
        self._queues: dict[str, deque] = {}  # batch id -> queued job ids fetched ahead (a window, not all)
        self._out: dict[str, list[str]] = {}  # worker id -> attempts out on it, in lease order
        self._inputs: dict[tuple[str, int], tuple] = {}  # (batch, job) -> (params, seed) of a job out
        self._attempts: dict[str, dict] = {}  # attempts out (or ended in this message), leased since the start
        self._ends: list[tuple] = []  # this message's successful ends: written by flush_ends
        self._landings: list[tuple] = []  # and its successes to land (a RESULTS carries several)
        self._done_jobs: list[tuple] = []

    def _reset_leases(self) -> None:
        self._queues.clear()
        self._out.clear()
        self._attempts.clear()
        self._ends.clear()
        self._landings.clear()
        self._done_jobs.clear()

    def job_input(self, batch: dict, job_id: int) -> tuple[dict, int]:
        """A job's (params, seed): its own when the batch gave them, else the batch's."""
        known = self._inputs.get((batch["id"], job_id))  # a job out on a worker: read when it was claimed
        if known is not None:
            return known
        row = self.db.execute("SELECT params, seed FROM jobs WHERE batch_id=? AND job_id=?",
                              (batch["id"], job_id)).fetchone()
        return self._input_of(batch, job_id, row)

    @staticmethod
    def _input_of(batch: dict, job_id: int, row: tuple | None) -> tuple[dict, int]:
        if row and row[0] is not None:
            return json.loads(row[0]), int(row[1])
        return batch["params"], job_seed(batch["seed"], job_id)

    def _queued_for(self, accepts, enough: int) -> int:
        """Queued jobs of the active batches a worker may take, counted up to ``enough``."""
        queued = 0
        for batch_id in self._active_batches():
            if queued >= enough:
                break
            if accepts is None or accepts(batch_id):
                row = self.db.execute("SELECT n FROM counts WHERE batch_id=? AND status='queued'", (batch_id,)).fetchone()
                queued += row[0] if row else 0
        return queued

    def _active_batches(self) -> list[str]:
        if self._active is None:
            self._active = [r[0] for r in self.db.execute(
                "SELECT id FROM batches WHERE status='active' AND paused='' ORDER BY priority DESC, created, id")]
        return self._active

    def lease(self, worker_id: str, live: set[str] = frozenset(), accepts=None, take: int = 1,
              start: bool = True) -> list[tuple[dict, int, str]]:
        """Lease up to ``take`` jobs to ``worker_id``: [(batch, job id, attempt id)] in the order it runs them.
        With ``start`` (the worker holds nothing) the first one is running at once, the others leased (held
        ahead). Highest priority first, then oldest batch, then job order; paused batches, and those
        ``accepts(batch id)`` refuses (requirements the worker does not meet), are skipped. Fair share: a worker
        that holds nothing gets one job whenever there is one; jobs to hold ahead only while more jobs are queued
        than there are ``live`` workers, and at most that excess, so a short queue is spread over the workers
        instead of held ahead by one. A worker leaves
        the jobs it failed, and a batch that blocked it, to the other live workers, but only while another live
        worker could take them: work is never left to nobody."""
        first = 1 if start else 0
        if take > first:
            workers = len(set(live) | {worker_id})
            take = min(take, first + max(0, self._queued_for(accepts, workers + take - first) - workers))
        leased: list[tuple[dict, int, str]] = []
        for batch_id in self._active_batches() if take else ():
            if len(leased) == take:
                break
            if accepts is not None and not accepts(batch_id):
                continue
            failed: set[int] = set()
            others = set(live) - {worker_id} if batch_id in self._with_failures else ()
            if others:  # blocks and failures only exist once something failed
                blocked = {r[0] for r in self.db.execute("SELECT worker_id FROM blocks WHERE batch_id=?", (batch_id,))}
                if worker_id in blocked and others - blocked:
                    continue
                failed = {job for (job,) in self.db.execute("SELECT job_id FROM failures WHERE batch_id=? AND "
                                                            "worker_id=?", (batch_id, worker_id))
                          if others - self._failed_by(batch_id, job)}
            batch = self.batch(batch_id)
            leased += [(batch, job_id, secrets.token_hex(16))  # 32 hex digits, as uuid4().hex gave
                       for job_id in self._claim_queued(batch_id, failed, take - len(leased))]
        if not leased:
            return leased
        now, out = time.time(), self.attempts_out(worker_id)
        rows = [(attempt_id, batch["id"], job_id, worker_id, "running" if start and i == 0 else "leased", now, now)
                for i, (batch, job_id, attempt_id) in enumerate(leased)]
        self.db.executemany("INSERT INTO attempts (id, batch_id, job_id, worker_id, status, started, progressed) "
                            "VALUES (?,?,?,?,?,?,?)", rows)
        for row in rows:
            out.append(row[0])
            self._attempts[row[0]] = dict(zip(KEYS, row[:5]))
        return leased

    def _failed_by(self, batch_id: str, job_id: int) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT worker_id FROM failures WHERE batch_id=? AND job_id=?",
                                              (batch_id, job_id))}

    def _claim_queued(self, batch_id: str, skip: set[int], n: int) -> list[int]:
        """Mark running up to ``n`` queued jobs of a batch that are not in ``skip`` (jobs this worker already
        failed), in one statement per window, and return their ids in queue order. Job ids are read ahead in
        windows; the table stays the truth: a job is claimed only if it is still queued (one in the window may
        have been cancelled meanwhile). Their inputs come back with the claim (kept for :meth:`job_input`)."""
        queue = self._queues.setdefault(batch_id, deque())
        claimed: list[int] = []
        for _ in range(2):
            while len(claimed) < n:
                picked, kept = [], []
                while queue and len(picked) < n - len(claimed):
                    job_id = queue.popleft()
                    (kept if job_id in skip else picked).append(job_id)
                queue.extendleft(reversed(kept))
                if not picked:
                    break
                rows = {r[0]: r[1:] for r in self.db.execute(
                    f"UPDATE jobs SET status='running', attempts=attempts+1 WHERE batch_id=? AND job_id IN "
                    f"({','.join('?' * len(picked))}) AND status='queued' RETURNING job_id, params, seed",
                    (batch_id, *picked))}
                batch = self.batch(batch_id)
                for job_id in picked:
                    if job_id in rows:
                        self._inputs[batch_id, job_id] = self._input_of(batch, job_id, rows[job_id])
                        claimed.append(job_id)
            if len(claimed) == n:
                break
            queue.clear()
            queue.extend(r[0] for r in self.db.execute(
                f"SELECT job_id FROM jobs {BY_STATUS} WHERE batch_id=? AND status='queued' ORDER BY job_id LIMIT 2000",
                (batch_id,)))
        return claimed

    def _requeue(self, batch_id: str, job_id: int) -> None:
        self.db.execute("UPDATE jobs SET status='queued' WHERE batch_id=? AND job_id=? AND status='running'",
                        (batch_id, job_id))
        self._queues.setdefault(batch_id, deque()).appendleft(job_id)

    def attempt(self, attempt_id: str) -> dict | None:
        """The attempt's id, batch, job, worker and status (not to be changed by the caller)."""
        if attempt_id in self._attempts:
            return self._attempts[attempt_id]
        row = self.db.execute("SELECT id, batch_id, job_id, worker_id, status FROM attempts WHERE id=?",
                              (attempt_id,)).fetchone()
        return dict(zip(KEYS, row)) if row else None

    def started(self, attempt_id: str, worker_id: str) -> None:
        """The worker names an attempt it holds as the one it runs: a held one is running from now (its hang
        clock starts now)."""
        attempt = self.attempt(attempt_id)
        if attempt is None or attempt["status"] != "leased" or attempt["worker_id"] != worker_id:
            return
        self.db.execute("UPDATE attempts SET status='running', progressed=? WHERE id=?", (time.time(), attempt_id))
        if attempt_id in self._attempts:
            self._attempts[attempt_id] = {**attempt, "status": "running"}

    def progress(self, attempt_id: str, worker_id: str) -> None:
        self.started(attempt_id, worker_id)
        self.db.execute("UPDATE attempts SET progressed=? WHERE id=? AND status='running'", (time.time(), attempt_id))

    def land(self, attempt: dict) -> None:
        """A success whose files are to be committed in this cycle: ``landing`` until :meth:`finish` with
        ``landing`` records how it ended. Written with the message's other landings (:meth:`flush_ends`)."""
        self._landings.append((LANDING, attempt["id"]))
        self._forget(attempt)
        self._attempts[attempt["id"]] = {**attempt, "status": LANDING}

    def finish(self, attempt_id: str, worker_id: str, ok: bool, error: str = "", seconds: float = 0.0,
               attempt: dict | None = None, live: set[str] = frozenset(), landing: bool = False) -> str:
        """Record an attempt's end. Returns 'done', 'retry', 'failed', or 'stale' (not an attempt out on this
        worker, or with ``landing`` not one landing: its results must be ignored). ``attempt``: the row, when the
        caller has it. A job fails after ``max_attempts`` failed attempts, made by ``distinct_workers`` different
        workers when that many are ``live`` (a farm of one worker fails a job after its attempts there). A success
        is written with the message's other successes (:meth:`flush_ends`)."""
        attempt = attempt or self.attempt(attempt_id)
        if (attempt is None or attempt["worker_id"] != worker_id
                or (attempt["status"] != LANDING if landing else attempt["status"] not in OUT)):
            return "stale"
        batch_id, job_id, now = attempt["batch_id"], attempt["job_id"], time.time()
        self._forget(attempt)
        if ok:  # until written, the attempt is known as done (a second result for it is stale)
            self._attempts[attempt_id] = {**attempt, "status": "done"}
            self._ends.append((now, attempt_id))
            self._done_jobs.append((seconds, batch_id, job_id))
            return "done"
        self.db.execute("UPDATE attempts SET status='failed', finished=?, error=? WHERE id=?",
                        (now, error[:2000], attempt_id))
        self.db.execute("INSERT OR IGNORE INTO failures VALUES (?,?,?)", (batch_id, job_id, worker_id))
        self._with_failures.add(batch_id)
        self.db.execute("UPDATE jobs SET failures=failures+1 WHERE batch_id=? AND job_id=?", (batch_id, job_id))
        failures = self.db.execute("SELECT failures FROM jobs WHERE batch_id=? AND job_id=?",
                                   (batch_id, job_id)).fetchone()[0]
        failed_by = len(self._failed_by(batch_id, job_id))
        worker_failures = self.db.execute("SELECT COUNT(DISTINCT job_id) FROM failures WHERE batch_id=? AND "
                                          "worker_id=?", (batch_id, worker_id)).fetchone()[0]
        if worker_failures >= self.block_after:
            self.db.execute("INSERT OR IGNORE INTO blocks VALUES (?,?)", (batch_id, worker_id))
        enough_workers = failed_by >= min(self.distinct_workers, max(1, len(set(live) | {worker_id})))
        if failures >= self.max_attempts and (enough_workers or failures >= self.max_attempts + self.distinct_workers):
            self.db.execute("UPDATE jobs SET status='failed', error=? WHERE batch_id=? AND job_id=?",
                            (error[:2000], batch_id, job_id))
            return "failed"
        self._requeue(batch_id, job_id)
        return "retry"

    def flush_ends(self) -> None:
        """Write the landings and successful ends recorded since the last flush: a statement for all landings,
        two for all ends."""
        if self._landings:
            self.db.executemany("UPDATE attempts SET status=? WHERE id=?", self._landings)
            self._landings.clear()
        if self._ends:
            self.db.executemany("UPDATE attempts SET status='done', finished=?, error='' WHERE id=?", self._ends)
            self.db.executemany("UPDATE jobs SET status='done', seconds=? WHERE batch_id=? AND job_id=?",
                                self._done_jobs)
            for _, attempt_id in self._ends:
                self._attempts.pop(attempt_id, None)
            self._ends.clear()
            self._done_jobs.clear()

    def _forget(self, attempt: dict) -> None:
        """An attempt is no longer out: out of the caches."""
        out = self._out.get(attempt["worker_id"])
        if out is not None and attempt["id"] in out:
            out.remove(attempt["id"])
        self._attempts.pop(attempt["id"], None)
        self._inputs.pop((attempt["batch_id"], attempt["job_id"]), None)

    def lose_attempt(self, attempt_id: str, why: str) -> None:
        """An attempt out on a worker that vanished, hung or let it go, or a landing one whose files could not be
        committed for want of space: requeue its job (not counted as a failure)."""
        attempt = self.attempt(attempt_id)
        if attempt is None or attempt["status"] not in (*OUT, LANDING):
            return
        self.db.execute("UPDATE attempts SET status='lost', finished=?, error=? WHERE id=?",
                        (time.time(), why, attempt_id))
        self._forget(attempt)
        self._requeue(attempt["batch_id"], attempt["job_id"])

    def attempts_out(self, worker_id: str) -> list[str]:
        """The attempts out on a worker (held ahead or running), in lease order (kept in memory; read from the
        table once per worker). The caller must not change the list."""
        if worker_id not in self._out:
            self._out[worker_id] = [r[0] for r in self.db.execute(
                "SELECT id FROM attempts WHERE status IN ('leased','running') AND worker_id=? ORDER BY rowid",
                (worker_id,))]
        return self._out[worker_id]

    def running_attempts(self, worker_id: str | None = None) -> list[dict]:
        """Attempts out on workers (held ahead or running), with their status and last progress."""
        sql = ("SELECT id, batch_id, job_id, worker_id, progressed, status FROM attempts WHERE status IN "
               "('leased','running')")
        rows = self.db.execute(sql + (" AND worker_id=?" if worker_id else ""), (worker_id,) if worker_id else ())
        return [dict(zip(("id", "batch_id", "job_id", "worker_id", "progressed", "status"), r)) for r in rows]

    def held(self, batch_id: str) -> int:
        """How many of a batch's jobs are held ahead on workers (leased, not started)."""
        return self.db.execute("SELECT COUNT(*) FROM attempts WHERE status='leased' AND batch_id=?",
                               (batch_id,)).fetchone()[0]

    def running_jobs(self) -> dict[str, tuple[str, int]]:
        """worker id -> (batch id, job id) of the attempt it runs (not those it holds ahead)."""
        return {w: (b, j) for w, b, j in self.db.execute(
            "SELECT worker_id, batch_id, job_id FROM attempts WHERE status='running'")}
