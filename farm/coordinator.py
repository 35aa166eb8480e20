"""The coordinator: a ROUTER for workers, a ROUTER for clients, a PUB for events, state in SQLite.

One thread runs :meth:`Coordinator.serve`. Each cycle polls with a timeout, drains what arrived,
commits the resulting transitions, then sends the replies and events (so nothing is announced that is
not committed). A cycle with successes to land commits twice: its messages' transitions (their leases, the
successes marked ``landing``), whose replies (the next tasks) go out at once, then the successes' files
(farm/landing.py: folder fsyncs) and the commit recording them done, whose events follow. Malformed messages are counted in ``dropped`` and otherwise ignored. Workers that stop
heartbeating for ``lost_after`` seconds, and attempts without progress for ``hang_after`` seconds, have
their jobs requeued. Results of an attempt that is no longer the running one are rejected.
"""
from __future__ import annotations

import errno
import json
import logging
import shutil
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import zmq

from ..addon.core.dataset.native import DatasetWriter, job_record
from . import auth
from . import protocol as p
from .fleet import Fleet
from .health import HealthFile
from .jobs_log import JobsLog
from .liveness import Liveness
from .landing import Arrival, Landing, discard_staging, staging_dir
from .objectstore import Buckets, StorageError, manifest_frames
from .paths import StagingRefused, missing_frames, shared_root, staged_frames, vet_staging
from .requests import ClientRequests
from .settings import Settings
from .wake import Wake
from .leases import LANDING, OUT
from .store import Store
from .transfer import AttemptFiles, BlobStore, TransferServer

log = logging.getLogger(__name__)
UNRECORDED = "its end could not be recorded"  # a landing attempt lost instead (its job runs again)
# flags as plain ints: pyzmq's send_multipart/recv_multipart combine its enum flags for every frame (~10 us a message)
NOBLOCK, MORE, RCVMORE = int(zmq.NOBLOCK), int(zmq.NOBLOCK | zmq.SNDMORE), int(zmq.RCVMORE)


def receive(sock: zmq.Socket) -> list[bytes]:
    """A message's frames, or zmq.Again when none is waiting (what ``recv_multipart(zmq.NOBLOCK)`` does)."""
    frames = [sock.recv(NOBLOCK)]
    while sock.get(RCVMORE):
        frames.append(sock.recv(NOBLOCK))
    return frames


def send(sock: zmq.Socket, frames: list[bytes]) -> None:
    """Send a message without blocking (what ``send_multipart(frames, zmq.NOBLOCK)`` does; zmq.Again if the peer's
    queue is full: a multipart message goes out whole or not at all)."""
    for frame in frames[:-1]:
        sock.send(frame, MORE)
    sock.send(frames[-1], NOBLOCK)


def disk_error(err: BaseException) -> bool:
    """Whether a database error is the state's disk failing (full, or an I/O error), not a fault of one request."""
    return isinstance(err, sqlite3.OperationalError) and getattr(err, "sqlite_errorcode", 0) & 0xFF in (
        sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR)


class Coordinator(ClientRequests, Liveness):
    def __init__(self, data_dir: Path, workers: str = "tcp://127.0.0.1:5555", clients: str = "tcp://127.0.0.1:5556",
                 events: str = "tcp://127.0.0.1:5557", transfer: str = "tcp://127.0.0.1:5558", *,
                 context: zmq.Context | None = None, keys: Path | None = None, **settings):
        """``settings``: fields of :class:`Settings` (heartbeat, lost_after, out_root, ...)."""
        self.settings = Settings(**settings)
        if self.settings.out_root is None:
            self.settings.out_root = (Path(data_dir) / "datasets").resolve()
        self.store = Store(Path(data_dir) / "farm.sqlite")
        self.fleet = Fleet(self.store)  # capabilities, requirements, and the views of workers and jobs
        # datasets in object storage (submit --out s3://...): the batch's folder is a local mirror of its own files
        self.buckets = Buckets(Path(data_dir) / "buckets", self.store.db)
        self._publish: set[str] = set()  # buckets whose batch finished: their own files go up after the cycle
        self.store.max_attempts, self.store.distinct_workers, self.store.block_after = (
            self.settings.max_attempts, self.settings.distinct_workers, self.settings.block_after)
        self.heartbeat, self.liveness = self.settings.heartbeat, self.settings.liveness
        self.lost_after, self.hang_after = self.settings.lost_after, self.settings.hang_after
        self.context = context or zmq.Context.instance()
        self.dropped: Counter = Counter()
        self.stop_event = threading.Event()
        self.wake = Wake(self.context)
        self.health: HealthFile | None = None  # rewritten every cycle for a liveness probe (synthfarm health)
        self._outbox: list[tuple[zmq.Socket, list[bytes]]] = []
        self.jobs_log = JobsLog(self.store)  # jobs.jsonl lines, written after each commit
        self.landing = Landing()  # the cycle's successes: their files committed together before the state
        self.jobs_log.check_all()
        self.state_error = ""  # why the state cannot be written (its disk is full); dispatch waits meanwhile
        self._seen: dict[bytes, float] = {}  # worker identity -> when last heard from (monotonic)
        self._live_ids: set[str] = set()  # the same workers' ids (kept with _seen, not rebuilt per dispatch)
        self._roots: dict[str, str] = {}  # recipe folder -> the task's root, found again in every cycle
        self._ended: set[str] = set()  # batches whose jobs ended in this cycle: finished? (asked once, at its end)
        self.worker_errors: dict[str, str] = {}  # worker id -> why it cannot render (from its BYE)
        self._refused: set[bytes] = set()  # peers refused for another protocol version (logged once each)
        self._known = {w["id"].encode() for w in self.store.workers() if w["status"] != "gone"}
        for attempt in self.store.running_attempts():  # workers that ran something: heard from now, or lost
            self._heard(attempt["worker_id"].encode())
        self.sockets = {}
        self.transfer = TransferServer(BlobStore(Path(data_dir) / "blobs"), self._attempt_files, self._dataset_of,
                                       max_uploads=self.settings.max_uploads_per_sender)
        self.authenticator = auth.start_authenticator(self.context, keys) if keys else None
        self._roles = auth.authorized_roles(keys) if keys else None  # public key -> roles, for file transfers
        for name, kind, endpoint in (("workers", zmq.ROUTER, workers), ("clients", zmq.ROUTER, clients),
                                     ("events", zmq.PUB, events), ("transfer", zmq.ROUTER, transfer)):
            sock = self.context.socket(kind)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.MAXMSGSIZE, p.MAX_FRAME)
            if kind == zmq.ROUTER:
                sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
            if name == "transfer":  # a worker reconnecting with its id takes over from its old connection
                sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
            if keys:
                auth.secure_server(sock, keys, name)
            endpoint = self._bind(sock, endpoint)
            self.sockets[name] = sock
            setattr(self, f"{name}_endpoint", endpoint)
        self._last_check = self._last_sweep = time.monotonic()
        self._sweep(start=True)

    @staticmethod
    def _bind(sock, endpoint: str) -> str:
        if endpoint.endswith(":0"):  # any free port
            port = sock.bind_to_random_port(endpoint.rsplit(":", 1)[0])
            return f"{endpoint.rsplit(':', 1)[0]}:{port}"
        sock.bind(endpoint)
        return endpoint

    # -- the loop ---------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask :meth:`serve` (in another thread) to leave now, not at its next wake-up."""
        self.stop_event.set()
        self.wake.nudge()

    def serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self.sockets["workers"], zmq.POLLIN)
        poller.register(self.sockets["clients"], zmq.POLLIN)
        poller.register(self.sockets["transfer"], zmq.POLLIN)
        wake = self.wake.socket()
        poller.register(wake, zmq.POLLIN)
        log.info("coordinator: workers %s, clients %s, events %s", self.workers_endpoint, self.clients_endpoint,
                 self.events_endpoint)
        try:
            while not self.stop_event.is_set():
                self.step(poller, timeout_ms=int(self.heartbeat * 1000 / 2))
                if self.health:
                    self.health.beat(role="coordinator", workers=len(self._seen))
        finally:
            wake.close()
            self.close()

    def step(self, poller: zmq.Poller, timeout_ms: int = 500) -> None:
        ready = dict(poller.poll(timeout_ms))
        self._roots.clear()
        if self.sockets["transfer"] in ready:
            self._on_transfer()
        for name, handle in (("workers", self._on_worker), ("clients", self._on_client)):
            sock = self.sockets[name]
            if sock not in ready:
                continue
            for _ in range(1000):  # drain, but let the other socket have its turn
                try:
                    frames = receive(sock)
                except zmq.Again:
                    break
                self._guarded(name, frames, handle)
        if self.landing.arrivals and self._commit():  # the cycle's tasks (its leases committed) go out now, not
            self._send_outbox()  # after the successes' folder fsyncs; the landing attempts are committed `landing`
        self._land()  # files first: the cycle's successes are recorded done in the commit below
        if time.monotonic() - self._last_check >= self.heartbeat:
            if self.state_error:
                self._last_check = time.monotonic()
                self._probe_state()
            else:
                self._guarded("liveness", [], lambda _: self._check_liveness())
        if self._ended:
            self._guarded("finish", [], lambda _: self._finish_ended())
        self._commit()
        self.jobs_log.flush()  # one write and fsync per dataset and cycle, after the commit
        for url in self._publish:  # finished datasets in buckets: their own files go up
            try:
                self.buckets.publish(url)
            except StorageError as err:
                log.error("%s finished but its files could not be published: %s", url, err)
        self._publish.clear()
        self._send_outbox()

    def _commit(self) -> bool:
        """Commit the cycle's transitions so far; False if the state cannot be written (then nothing of them is
        kept, so nothing of them is announced)."""
        try:
            self.store.commit()
            return True
        except sqlite3.Error as err:
            self._state_failed(err)
            return False

    def _send_outbox(self) -> None:
        """Send the replies and events of what is committed."""
        for sock, frames in self._outbox:
            try:
                send(sock, frames)
            except zmq.ZMQError as err:  # a peer gone or a full queue: it will ask again
                log.debug("send failed: %s", err)
        self._outbox.clear()

    def _guarded(self, source: str, frames: list[bytes], handle, retried: bool = False) -> bool:
        """Handle one message in a savepoint: if it raises, its transitions, replies and records are undone,
        the error is logged (unless the caller handles it again, piece by piece: ``retried``), and a client gets an
        error reply (and this returns False). Nothing a peer sends ends the loop."""
        outbox, arrivals = len(self._outbox), len(self.landing.arrivals)
        records = {out: len(r) for out, r in self.jobs_log.pending.items()}
        try:
            with self.store.request():
                handle(frames)
            return True
        except Exception as err:
            if disk_error(err):
                self._state_failed(err)  # the state's disk failed: nothing of this cycle is kept
            else:
                if not retried:
                    log.exception("error while handling a message from %s", source)
                    self.dropped["internal_error"] += 1
                del self._outbox[outbox:]
                del self.landing.arrivals[arrivals:]
                for out in list(self.jobs_log.pending):
                    del self.jobs_log.pending[out][records.get(out, 0):]
            if source == "clients" and frames:
                self._send("clients", frames[0], "REPLY", p.Reply(ok=False, error=self.state_error or (
                    f"the coordinator failed on this request ({type(err).__name__}: {str(err)[:300]}); it is logged "
                    "and nothing of it was kept")))
        return False

    def _state_failed(self, err: Exception) -> None:
        """The state cannot be written: undo the cycle, announce none of it, and stop dispatching until a probe
        write succeeds again (status says why meanwhile)."""
        try:
            self.store.db.rollback()
        except sqlite3.Error:
            pass
        self.store.reset_caches()
        self._outbox = [(sock, frames) for sock, frames in self._outbox if sock is self.sockets["clients"]
                        and b'"ok":false' in frames[-1]]  # refusals may still go out; nothing else happened
        self.jobs_log.pending.clear()
        self.landing.arrivals.clear()  # their attempts stay out (lost when their workers ask for more), or were
        #                                committed `landing`: lost once the state is writable again (_probe_state)
        if not self.state_error:
            log.error("the farm's state cannot be written (%s); dispatch stops until it can", err)
        self.state_error = (f"the farm's state cannot be written ({err}): free space on the disk of "
                            f"{self.store.path.parent}; dispatch resumes by itself")

    def _probe_state(self) -> None:
        try:
            if shutil.disk_usage(self.store.path.parent).free < self.settings.min_free_bytes:
                return
            self.store.probe()
        except (sqlite3.Error, OSError):
            self.store.db.rollback()
            return
        log.info("the farm's state is writable again; dispatch resumes")
        self.state_error = ""

    def close(self) -> None:
        self.landing.close()
        for sock in self.sockets.values():
            sock.close(linger=0)
        if self.authenticator is not None:
            self.authenticator.stop()
        self.store.close()

    def _on_transfer(self) -> None:
        sock = self.sockets["transfer"]
        for _ in range(256):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if len(frames) < 2:
                self.dropped["malformed"] += 1
                continue
            roles = None if self._roles is None else self._roles.get(frames[1].get("User-Id"), set())
            reply = self.transfer.handle([f.bytes for f in frames[1:]], frames[0].bytes, roles)
            if reply[1] == b"ERROR":
                self.dropped["transfer_refused"] += 1
            sock.send_multipart([frames[0].bytes, *reply])

    def _attempt_files(self, attempt_id: str) -> AttemptFiles | None:
        attempt = self.store.attempt(attempt_id)
        if attempt is None or attempt["status"] not in OUT:
            return None
        batch = self.store.batch(attempt["batch_id"])
        return AttemptFiles(Path(staging_dir(batch["out"], attempt_id)), attempt["job_id"], batch["frames"],
                            attempt["worker_id"])

    def _dataset_of(self, batch_id: str) -> Path | None:
        batch = self.store.batch(batch_id)
        return Path(batch["out"]) if batch else None

    def _send(self, socket: str, identity: bytes, kind: str, payload: p.Payload) -> None:
        self._outbox.append((self.sockets[socket], [identity, *p.encode(kind, payload)]))

    def _event(self, batch_id: str, **event) -> None:
        self._outbox.append((self.sockets["events"], [batch_id.encode(), json.dumps(event).encode()]))

    # -- workers ----------------------------------------------------------------------------------------
    def _on_worker(self, frames: list[bytes]) -> None:
        if len(frames) < 2:
            self.dropped["malformed"] += 1
            return
        identity, body = frames[0], frames[1:]
        try:
            kind, msg = p.decode(body, p.WORKER_TYPES)
        except p.VersionMismatch as err:  # another synthfarm release: refused, with both versions named
            self._refuse("workers", identity, err)
            return
        except p.ProtocolError as err:
            self.dropped["malformed"] += 1
            log.debug("dropped a worker message: %s", err)
            return
        worker_id = identity.decode(errors="replace")
        if kind != "HELLO" and identity not in self._known:
            self.dropped["unknown_identity"] += 1
            return
        self._heard(identity)
        if self.state_error:  # nothing can be recorded: keep workers connected and idle, write nothing
            return self._while_state_fails(identity, kind, msg)
        if kind == "HELLO":
            self._known.add(identity)
            self.store.worker_seen(worker_id, msg.host, msg.device, "busy" if msg.running else "idle")
            self.fleet.hello(worker_id, msg.capabilities)
            self._send("workers", identity, "WELCOME", p.Welcome(
                heartbeat_seconds=self.heartbeat, liveness=self.liveness,
                transfer_port=int(self.transfer_endpoint.rsplit(":", 1)[1])))
            out = set(self.store.attempts_out(worker_id))
            for attempt_id in out - {msg.running}:  # the worker restarted (or reconnected): what it held is lost
                self._lose(attempt_id, "worker restarted")
            if msg.running and msg.running not in out:
                self._send("workers", identity, "CANCEL", p.Cancel(attempt_id=msg.running))
            elif msg.running:
                self.store.started(msg.running, worker_id)
        elif kind == "REQUEST":
            self._dispatch(identity, worker_id, msg)
        elif kind == "HEARTBEAT":
            if msg.attempt_id:  # the attempt it runs: one held ahead has started
                self.store.started(msg.attempt_id, worker_id)
            self.store.worker_seen(worker_id, status="busy" if msg.attempt_id else "idle")
            self._send("workers", identity, "HEARTBEAT", p.Heartbeat(worker_id=worker_id))
        elif kind == "PROGRESS":
            self.store.progress(msg.attempt_id, worker_id)
            attempt = self.store.attempt(msg.attempt_id)
            if attempt:
                self._event(attempt["batch_id"], kind="progress", job=attempt["job_id"], frames=msg.frames_done,
                            total=msg.frames_total)
        elif kind == "DONE":
            self._on_done(worker_id, msg)
        elif kind == "RESULTS":
            for result in msg.results:
                self._on_done(worker_id, result)
        elif kind == "BYE":
            for attempt in self.store.running_attempts(worker_id):
                self._lose(attempt["id"], "worker left")
            if msg.error:  # it cannot render: say so where people look (the log, `synthfarm workers`)
                log.error("worker %s cannot render: %s", worker_id, msg.error)
                self.worker_errors[worker_id] = msg.error
            self.store.worker_seen(worker_id, status="broken" if msg.error else "gone")
            self._known.discard(identity)
            self._not_heard(identity)  # a worker that said BYE is gone, not lost

    def _while_state_fails(self, identity: bytes, kind: str, msg) -> None:
        if kind == "HELLO":
            self._known.add(identity)
            self._send("workers", identity, "WELCOME", p.Welcome(
                heartbeat_seconds=self.heartbeat, liveness=self.liveness,
                transfer_port=int(self.transfer_endpoint.rsplit(":", 1)[1])))
        elif kind == "REQUEST":
            self._send("workers", identity, "NO_TASK", p.NoTask(retry_seconds=self.heartbeat * 2))
        elif kind == "HEARTBEAT":
            self._send("workers", identity, "HEARTBEAT", p.Heartbeat(worker_id=msg.worker_id))

    def _refuse(self, socket: str, identity: bytes, err: p.VersionMismatch) -> None:
        """A peer of another protocol version: told so (both versions named), logged once per peer."""
        self.dropped["version"] += 1
        if identity not in self._refused:
            self._refused.add(identity)
            log.error("refused %s %s: %s", socket[:-1], identity.decode(errors="replace")[:100], err)
        self._outbox.append((self.sockets[socket], [identity, *p.refusal(err.theirs.encode())]))

    def _dispatch(self, identity: bytes, worker_id: str, msg: p.Request) -> None:
        holding = set(msg.holding)
        for attempt_id in [a for a in self.store.attempts_out(worker_id) if a not in holding]:
            self._lose(attempt_id, "worker asked for new work")  # what it no longer holds is over
        leased = self.store.lease(worker_id, self._live(), self.fleet.accepts(worker_id), msg.take,
                                  start=not holding - set(msg.rendered))
        if not leased:
            self._send("workers", identity, "NO_TASK", p.NoTask(retry_seconds=self.heartbeat))
            return
        self.store.worker_seen(worker_id, status="busy")
        tasks = [self._task(*each) for each in leased]
        if len(tasks) == 1:
            self._send("workers", identity, "TASK", tasks[0])
        else:
            self._send("workers", identity, "TASKS", p.Tasks(tasks=tasks))

    def _task(self, batch: dict, job_id: int, attempt_id: str) -> p.Task:
        params, seed = self.store.job_input(batch, job_id)
        return p.Task(
            attempt_id=attempt_id, batch_id=batch["id"], job_id=job_id, recipe=batch["recipe"],
            recipe_dir=batch["recipe_dir"], params=params, seed=seed,
            frames=batch["frames"], preview=batch["preview"], staging=staging_dir(batch["out"], attempt_id),
            storage=self.buckets.url_of(batch["id"]),
            inputs=batch["inputs"], recipe_path=batch["recipe_path"], bundle_root=self._task_root(batch))

    def _task_root(self, batch: dict) -> str:
        """The folder a task may read from: '' for a bundle (the worker lays it out), else the allowed shared root
        (one no longer allowed leaves the worker no folder to read)."""
        if batch["inputs"]:
            return ""
        folder = batch["recipe_dir"]
        if folder not in self._roots:  # resolved once per cycle (links included), not for every task
            self._roots[folder] = str(shared_root(self.settings, folder) or "/nonexistent")
        return self._roots[folder]

    def _on_done(self, worker_id: str, msg: p.Done) -> None:
        attempt = self.store.attempt(msg.attempt_id)
        batch = self.store.batch(attempt["batch_id"]) if attempt else None
        staging = staging_dir(batch["out"], msg.attempt_id) if batch else None
        current = bool(attempt and attempt["status"] in OUT and attempt["worker_id"] == worker_id)
        if current and not msg.ok and msg.reason == "no_space":
            self.store.worker_seen(worker_id, status="idle")
            return self._out_of_space(batch, msg.attempt_id, msg.error)
        url = self.buckets.url_of(batch["id"]) if batch else ""
        if msg.ok and current and url:  # frames in a bucket: checked against the manifest, then committed there
            try:
                refused = missing_frames(manifest_frames(msg.manifest), attempt["job_id"], batch["frames"],
                                         batch["recipe"])
                if refused:
                    raise StorageError(refused)
                stems = self.buckets.commit(url, msg.attempt_id, attempt["job_id"], msg.manifest)
            except StorageError as err:
                log.warning("attempt %s of worker %s refused: %s", msg.attempt_id, worker_id, err)
                msg = msg.model_copy(update={"ok": False, "error": str(err)})
        elif msg.ok and current:
            refused, files = vet_staging(staging, attempt["job_id"], batch["frames"])
            refused = refused or missing_frames(staged_frames(files), attempt["job_id"], batch["frames"],
                                                batch["recipe"])
            if refused:  # a failed attempt, with the reason
                log.warning("attempt %s of worker %s refused: %s", msg.attempt_id, worker_id, refused)
                msg = msg.model_copy(update={"ok": False, "error": refused})
        if attempt and attempt["worker_id"] == worker_id:
            self.store.save_log(msg.attempt_id, msg.log_tail)
        if msg.ok and current and not url:  # its files land with the cycle's other successes, then it is done
            params, seed = self.store.job_input(batch, attempt["job_id"])
            self.landing.add(Arrival(attempt, batch["out"], staging, files, params, seed, msg.frames, msg.seconds,
                                     msg.device))
            self.store.land(attempt)
            self.store.worker_seen(worker_id, status="busy" if self.store.attempts_out(worker_id) else "idle")
            return
        if msg.ok and current:  # committed to its bucket above
            params, seed = self.store.job_input(batch, attempt["job_id"])
            self.jobs_log.add(batch["out"], job_record(
                attempt["job_id"], params, seed, "done",
                frames=msg.frames, stems=stems, seconds=round(msg.seconds, 3), device=msg.device))
        outcome = self.store.finish(msg.attempt_id, worker_id, msg.ok, msg.error, msg.seconds, attempt,
                                    self._live())
        if staging and attempt["status"] != LANDING:  # a stale or failed attempt's files (a landing one's land)
            discard_staging(staging)
        if url and not msg.ok:
            self.buckets.discard(url, msg.attempt_id)
        self.store.worker_seen(worker_id, status="busy" if self.store.attempts_out(worker_id) else "idle")
        self._job_ended(attempt, outcome, msg.error)

    def _land(self) -> None:
        """Commit the files of the cycle's successes (one durable group per dataset), then record each. A group
        that fails ends each of its attempts: out of space, back to the queue uncounted and the batch paused (as a
        worker's full disk does); any other error, a failed attempt that names it. Nothing is recorded done whose
        files are not durable."""
        for arrivals, error in self.landing.land():
            if self._guarded("landing", [], lambda _, g=arrivals, e=error: [self._landed(a, e) for a in g],
                             retried=True):
                continue  # the group's ends in one savepoint; if one raised, each in its own (and logged):
            for arrival in arrivals:
                if not self._guarded("landing", [], lambda _, a=arrival, e=error: self._landed(a, e)):
                    self._guarded("landing", [], lambda _, a=arrival: self._lose(a.attempt["id"], UNRECORDED))

    def _landed(self, arrival: Arrival, error: Exception | None) -> None:
        if self.state_error:  # the cycle is undone: the attempt stays out, lost when its worker asks for more
            return
        attempt = arrival.attempt
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return self._out_of_space(self.store.batch(attempt["batch_id"]), attempt["id"], str(error))
        if isinstance(error, StagingRefused):  # a dataset folder it goes to is a link: a failed attempt
            why = str(error)
            discard_staging(arrival.staging)
        elif error is None:
            self.jobs_log.add(arrival.out, job_record(
                attempt["job_id"], arrival.params, arrival.seed, "done", frames=arrival.frames, stems=arrival.stems,
                seconds=round(arrival.seconds, 3), device=arrival.device))
            why = ""
        else:
            why = (f"the attempt's frames could not be moved into the dataset {arrival.out} ({error}); the job runs "
                   "again. Check that disk")
            discard_staging(arrival.staging)
        outcome = self.store.finish(attempt["id"], attempt["worker_id"], error is None, why, arrival.seconds,
                                    live=self._live(), landing=True)
        self._job_ended(attempt, outcome, why)

    def _job_ended(self, attempt: dict | None, outcome: str, error: str) -> None:
        """Announce how an attempt ended (a stale result is only counted)."""
        if outcome == "stale":
            self.dropped["stale_result"] += 1
            return
        self._event(attempt["batch_id"], kind="job", job=attempt["job_id"], outcome=outcome, error=error)
        if outcome != "retry":
            self._ended.add(attempt["batch_id"])

    def _finish_ended(self) -> None:
        """At the end of a cycle: finish the batches whose last jobs ended in it (one query per batch and cycle,
        not per job; still before the cycle's commit, and its event after the jobs' events)."""
        for batch_id in sorted(self._ended):
            batch = self.store.batch(batch_id)
            if batch is not None and self.store.batch_finished(batch_id):
                self._finish_batch(batch)
            self._ended.discard(batch_id)  # kept when finishing raised: tried again in the next cycle

    def _lose(self, attempt_id: str, why: str) -> None:
        """Requeue an attempt's job and drop whatever files it staged."""
        attempt = self.store.attempt(attempt_id)
        self.store.lose_attempt(attempt_id, why)
        batch = self.store.batch(attempt["batch_id"]) if attempt else None
        if batch:
            discard_staging(staging_dir(batch["out"], attempt_id))
            if self.buckets.url_of(batch["id"]):
                self.buckets.discard(self.buckets.url_of(batch["id"]), attempt_id)

    def _out_of_space(self, batch: dict, attempt_id: str, detail: str) -> None:
        """The dataset's disk is full: a condition of the batch, not of a worker or a job. The attempt goes back
        to the queue uncounted and the batch waits until its disk has ``min_free_bytes`` free again."""
        self._lose(attempt_id, "out of space")
        free = shutil.disk_usage(batch["out"]).free if Path(batch["out"]).exists() else 0
        why = (f"out of space on the dataset's disk ({batch['out']}: {free / 1e6:.1f} MB free; resumes by itself "
               f"at {self.settings.min_free_bytes / 1e6:.0f} MB) - {detail.splitlines()[0][:200] if detail else ''}")
        if self.store.pause(batch["id"], why):
            log.error("batch %s paused: %s", batch["id"], why)
            self._event(batch["id"], kind="batch", status="paused", reason=why)

    def _finish_batch(self, batch: dict) -> None:
        self.landing.flush()  # the staging folders it landed, removed by the remover: then what is left, here
        shutil.rmtree(Path(batch["out"]) / ".staging", ignore_errors=True)
        summary = self.summary(batch["id"])
        try:
            DatasetWriter(Path(batch["out"])).finalize({"jobs": summary["jobs"]["done"],
                                                        "jobs_requested": batch["count"],
                                                        "frames_per_job": batch["frames"]})
        except OSError as err:  # its frames and jobs.jsonl are what counts; dataset.yaml's counts follow later
            log.error("batch %s: dataset.yaml not updated: %s", batch["id"], err)
        if self.buckets.url_of(batch["id"]):
            self._publish.add(self.buckets.url_of(batch["id"]))  # after this cycle's jobs.jsonl lines are written
        self._event(batch["id"], kind="batch", status="finished", jobs=summary["jobs"])
