"""The coordinator: a ROUTER for workers, a ROUTER for clients, a PUB for events, state in SQLite.

One thread runs :meth:`Coordinator.serve`. Each cycle polls with a timeout, drains what arrived,
commits the resulting transitions, then sends the replies and events (so nothing is announced that is
not committed). Malformed messages are counted in ``dropped`` and otherwise ignored. Workers that stop
heartbeating for ``lost_after`` seconds, and attempts without progress for ``hang_after`` seconds, have
their jobs requeued. Results of an attempt that is no longer the running one are rejected.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import zmq

from ..addon.core.dataset.native import DatasetWriter, job_record
from ..addon.core.jobs import resolve_params
from ..addon.core.recipe import RecipeError, parse_recipe_text
from . import auth
from . import protocol as p
from ..addon.core.dataset.native import DatasetError
from .settings import Settings
from .fleet import Fleet
from .health import HealthFile
from .store import Store, StoreError
from .transfer import BlobStore, TransferError, TransferServer

log = logging.getLogger(__name__)


def staging_dir(out: str, attempt_id: str) -> Path:
    return Path(out) / ".staging" / attempt_id


class RequestError(ValueError):
    """A request the coordinator refuses; the message says why and what to do."""


class Coordinator:
    def __init__(self, data_dir: Path, workers: str = "tcp://127.0.0.1:5555", clients: str = "tcp://127.0.0.1:5556",
                 events: str = "tcp://127.0.0.1:5557", transfer: str = "tcp://127.0.0.1:5558", *,
                 context: zmq.Context | None = None, keys: Path | None = None, **settings):
        """``settings``: fields of :class:`Settings` (heartbeat, lost_after, out_root, ...)."""
        self.settings = Settings(**settings)
        if self.settings.out_root is None:
            self.settings.out_root = (Path(data_dir) / "datasets").resolve()
        self.store = Store(Path(data_dir) / "farm.sqlite")
        self.fleet = Fleet(self.store)  # capabilities, requirements, and the views of workers and jobs
        self.heartbeat, self.liveness = self.settings.heartbeat, self.settings.liveness
        self.lost_after, self.hang_after = self.settings.lost_after, self.settings.hang_after
        self.context = context or zmq.Context.instance()
        self.dropped: Counter = Counter()
        self.stop_event = threading.Event()
        self.health: HealthFile | None = None  # rewritten every cycle for a liveness probe (synthfarm health)
        self._outbox: list[tuple[zmq.Socket, list[bytes]]] = []
        self._records: dict[str, list[dict]] = {}  # jobs.jsonl lines of this cycle, per dataset
        self._seen: dict[bytes, float] = {}
        self._known = {w["id"].encode() for w in self.store.workers() if w["status"] != "gone"}
        self.sockets = {}
        self.transfer = TransferServer(BlobStore(Path(data_dir) / "blobs"), self._staging_of_running, self._dataset_of)
        self.authenticator = auth.start_authenticator(self.context, keys) if keys else None
        for name, kind, endpoint in (("workers", zmq.ROUTER, workers), ("clients", zmq.ROUTER, clients),
                                     ("events", zmq.PUB, events), ("transfer", zmq.ROUTER, transfer)):
            sock = self.context.socket(kind)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.MAXMSGSIZE, p.MAX_FRAME)
            if kind == zmq.ROUTER:
                sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
            if keys:
                auth.secure_server(sock, keys, name)
            endpoint = self._bind(sock, endpoint)
            self.sockets[name] = sock
            setattr(self, f"{name}_endpoint", endpoint)
        self._last_check = time.monotonic()

    @staticmethod
    def _bind(sock, endpoint: str) -> str:
        if endpoint.endswith(":0"):  # any free port
            port = sock.bind_to_random_port(endpoint.rsplit(":", 1)[0])
            return f"{endpoint.rsplit(':', 1)[0]}:{port}"
        sock.bind(endpoint)
        return endpoint

    # -- the loop ---------------------------------------------------------------------------------------
    def serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self.sockets["workers"], zmq.POLLIN)
        poller.register(self.sockets["clients"], zmq.POLLIN)
        poller.register(self.sockets["transfer"], zmq.POLLIN)
        log.info("coordinator: workers %s, clients %s, events %s", self.workers_endpoint, self.clients_endpoint,
                 self.events_endpoint)
        try:
            while not self.stop_event.is_set():
                self.step(poller, timeout_ms=int(self.heartbeat * 1000 / 2))
                if self.health:
                    self.health.beat(role="coordinator", workers=len(self._seen))
        finally:
            self.close()

    def step(self, poller: zmq.Poller, timeout_ms: int = 500) -> None:
        ready = dict(poller.poll(timeout_ms))
        if self.sockets["transfer"] in ready:
            self._on_transfer()
        for name, handle in (("workers", self._on_worker), ("clients", self._on_client)):
            sock = self.sockets[name]
            if sock not in ready:
                continue
            for _ in range(1000):  # drain, but let the other socket have its turn
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK, copy=True)
                except zmq.Again:
                    break
                self._guarded(name, frames, handle)
        if time.monotonic() - self._last_check >= self.heartbeat:
            self._guarded("liveness", [], lambda _: self._check_liveness())
        for out, records in self._records.items():  # one write and fsync per dataset and cycle
            DatasetWriter(Path(out)).record_jobs(records)
        self._records.clear()
        self.store.commit()
        for sock, frames in self._outbox:
            try:
                sock.send_multipart(frames, zmq.NOBLOCK)
            except zmq.ZMQError as err:  # a peer gone or a full queue: it will ask again
                log.debug("send failed: %s", err)
        self._outbox.clear()

    def _guarded(self, source: str, frames: list[bytes], handle) -> None:
        """Handle one message in a savepoint: if it raises, its transitions, replies and records are undone,
        the error is logged, and a client gets an error reply. Nothing a peer sends ends the loop."""
        outbox, records = len(self._outbox), {out: len(r) for out, r in self._records.items()}
        try:
            with self.store.request():
                handle(frames)
        except Exception as err:
            log.exception("error while handling a message from %s", source)
            self.dropped["internal_error"] += 1
            del self._outbox[outbox:]
            for out in list(self._records):
                del self._records[out][records.get(out, 0):]
            if source == "clients" and frames:
                self._send("clients", frames[0], "REPLY", p.Reply(
                    ok=False, error=f"the coordinator failed on this request ({type(err).__name__}: "
                                    f"{str(err)[:300]}); it is logged and nothing of it was kept"))

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close(linger=0)
        if self.authenticator is not None:
            self.authenticator.stop()
        self.store.close()

    def _on_transfer(self) -> None:
        sock = self.sockets["transfer"]
        for _ in range(256):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) < 2:
                self.dropped["malformed"] += 1
                continue
            reply = self.transfer.handle(frames[1:])
            if reply[1] == b"ERROR":
                self.dropped["transfer_refused"] += 1
            sock.send_multipart([frames[0], *reply])

    def _staging_of_running(self, attempt_id: str) -> Path | None:
        attempt = self.store.attempt(attempt_id)
        if attempt is None or attempt["status"] != "running":
            return None
        return staging_dir(self.store.batch(attempt["batch_id"])["out"], attempt_id)

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
        except p.ProtocolError as err:
            self.dropped["malformed"] += 1
            log.debug("dropped a worker message: %s", err)
            return
        worker_id = identity.decode(errors="replace")
        if kind != "HELLO" and identity not in self._known:
            self.dropped["unknown_identity"] += 1
            return
        self._seen[identity] = time.monotonic()
        if kind == "HELLO":
            self._known.add(identity)
            self.store.worker_seen(worker_id, msg.host, msg.device, "busy" if msg.running else "idle")
            self.fleet.hello(worker_id, msg.capabilities)
            self._send("workers", identity, "WELCOME", p.Welcome(
                heartbeat_seconds=self.heartbeat, liveness=self.liveness,
                transfer_port=int(self.transfer_endpoint.rsplit(":", 1)[1])))
            running = {a["id"] for a in self.store.running_attempts(worker_id)}
            for attempt_id in running - {msg.running}:  # the worker restarted: what it ran is lost
                self._lose(attempt_id, "worker restarted")
            if msg.running and msg.running not in running:
                self._send("workers", identity, "CANCEL", p.Cancel(attempt_id=msg.running))
        elif kind == "REQUEST":
            self._dispatch(identity, worker_id)
        elif kind == "HEARTBEAT":
            self.store.worker_seen(worker_id, status="busy" if msg.attempt_id else "idle")
            self._send("workers", identity, "HEARTBEAT", p.Heartbeat(worker_id=worker_id))
        elif kind == "PROGRESS":
            self.store.progress(msg.attempt_id)
            attempt = self.store.attempt(msg.attempt_id)
            if attempt:
                self._event(attempt["batch_id"], kind="progress", job=attempt["job_id"], frames=msg.frames_done,
                            total=msg.frames_total)
        elif kind == "DONE":
            self._on_done(worker_id, msg)
        elif kind == "BYE":
            for attempt in self.store.running_attempts(worker_id):
                self._lose(attempt["id"], "worker left")
            self.store.worker_seen(worker_id, status="gone")
            self._known.discard(identity)
            self._seen.pop(identity, None)  # a worker that said BYE is gone, not lost

    def _dispatch(self, identity: bytes, worker_id: str) -> None:
        running = self.store.running_attempt_of(worker_id)
        if running:  # a worker asks only when idle: what it ran is over
            self._lose(running, "worker asked for new work")
        leased = self.store.next_task(worker_id, self.fleet.accepts(worker_id))
        if leased is None:
            self._send("workers", identity, "NO_TASK", p.NoTask(retry_seconds=self.heartbeat))
            return
        batch, job_id, attempt_id = leased
        params, seed = self.store.job_input(batch, job_id)
        self.store.worker_seen(worker_id, status="busy")
        self._send("workers", identity, "TASK", p.Task(
            attempt_id=attempt_id, batch_id=batch["id"], job_id=job_id, recipe=batch["recipe"],
            recipe_dir=batch["recipe_dir"], params=params, seed=seed,
            frames=batch["frames"], preview=batch["preview"], staging=str(staging_dir(batch["out"], attempt_id)),
            inputs=batch["inputs"], recipe_path=batch["recipe_path"],
            bundle_root="" if batch["inputs"] else str(self._shared_root(batch["recipe_dir"]) or "/nonexistent")))

    def _on_done(self, worker_id: str, msg: p.Done) -> None:
        attempt = self.store.attempt(msg.attempt_id)
        batch = self.store.batch(attempt["batch_id"]) if attempt else None
        staging = staging_dir(batch["out"], msg.attempt_id) if batch else None
        if msg.ok and attempt and attempt["status"] == "running" and attempt["worker_id"] == worker_id:
            # files first: a crash after this re-runs the job, whose identical files overwrite these
            stems = DatasetWriter(Path(batch["out"])).commit_staging(staging)
            params, seed = self.store.job_input(batch, attempt["job_id"])
            self._records.setdefault(batch["out"], []).append(job_record(
                attempt["job_id"], params, seed, "done",
                frames=msg.frames, stems=stems, seconds=round(msg.seconds, 3), device=msg.device))
        if attempt and attempt["worker_id"] == worker_id:
            self.store.save_log(msg.attempt_id, msg.log_tail)
        outcome = self.store.finish(msg.attempt_id, worker_id, msg.ok, msg.error, msg.seconds, attempt)
        if staging is not None and staging.exists():
            shutil.rmtree(staging, ignore_errors=True)  # a stale or failed attempt's files
        self.store.worker_seen(worker_id, status="idle")
        if outcome == "stale":
            self.dropped["stale_result"] += 1
            return
        self._event(attempt["batch_id"], kind="job", job=attempt["job_id"], outcome=outcome, error=msg.error)
        if self.store.batch_finished(attempt["batch_id"]):
            self._finish_batch(batch)

    def _live_workers(self) -> list[str]:
        return [identity.decode(errors="replace") for identity in self._seen]

    def _lose(self, attempt_id: str, why: str) -> None:
        """Requeue an attempt's job and drop whatever files it staged."""
        attempt = self.store.attempt(attempt_id)
        self.store.lose_attempt(attempt_id, why)
        batch = self.store.batch(attempt["batch_id"]) if attempt else None
        if batch:
            shutil.rmtree(staging_dir(batch["out"], attempt_id), ignore_errors=True)

    def _finish_batch(self, batch: dict) -> None:
        shutil.rmtree(Path(batch["out"]) / ".staging", ignore_errors=True)
        summary = self.store.summary(batch["id"])
        writer = DatasetWriter(Path(batch["out"]))
        writer.finalize({"jobs": summary["jobs"]["done"], "jobs_requested": batch["count"],
                         "frames_per_job": batch["frames"]})
        self._event(batch["id"], kind="batch", status="finished", jobs=summary["jobs"])

    def _check_liveness(self) -> None:
        now_mono, now = time.monotonic(), time.time()
        self._last_check = now_mono
        for identity, seen in list(self._seen.items()):
            worker_id = identity.decode(errors="replace")
            self.store.worker_seen(worker_id, status=self.store.worker_status(worker_id) or "idle", force=True)
            if now_mono - seen > self.lost_after:
                log.warning("worker %s lost (silent for %.0f s); requeueing its work", worker_id, now_mono - seen)
                for attempt in self.store.running_attempts(worker_id):
                    self._lose(attempt["id"], "worker lost")
                self.store.worker_seen(worker_id, status="lost")
                del self._seen[identity]
        for worker_id in self.store.forget_workers(now - self.settings.forget_workers_after):
            self._known.discard(worker_id.encode())
        for attempt in self.store.running_attempts():
            if now - attempt["progressed"] > self.hang_after:
                log.warning("attempt %s hung (no progress for %.0f s); requeueing", attempt["id"], self.hang_after)
                self._lose(attempt["id"], "no progress")
                identity = attempt["worker_id"].encode()
                self._send("workers", identity, "CANCEL", p.Cancel(attempt_id=attempt["id"]))

    # -- clients ----------------------------------------------------------------------------------------
    def _on_client(self, frames: list[bytes]) -> None:
        if len(frames) < 2:
            self.dropped["malformed"] += 1
            return
        identity = frames[0]
        try:
            kind, msg = p.decode(frames[1:], p.CLIENT_TYPES)
        except p.ProtocolError as err:
            self.dropped["malformed"] += 1
            self._send("clients", identity, "REPLY", p.Reply(ok=False, error=str(err)))
            return
        try:
            with self.store.request():  # a refused request keeps nothing
                reply = p.Reply(ok=True, data=self._answer(kind, msg))
        except (StoreError, RecipeError, ValueError, DatasetError, TransferError) as err:
            reply = p.Reply(ok=False, error=str(err))
        except OSError as err:
            reply = p.Reply(ok=False, error=f"{kind.lower()}: {err.strerror or err} ({err.filename or ''})")
        self._send("clients", identity, "REPLY", reply)

    def _answer(self, kind: str, msg) -> dict:
        if kind == "SUBMIT":
            return self._submit(msg)
        if kind == "STATUS":
            live = self._live_workers()
            if msg.batch_id:
                return self.fleet.status(self.store.summary(msg.batch_id), live)
            return {"batches": [self.fleet.status(b, live) for b in self.store.batches()], "dropped": dict(self.dropped),
                    "transfer_port": int(self.transfer_endpoint.rsplit(":", 1)[1])}
        if kind == "LIST":
            return {"batches": self.store.batches()}
        if kind == "WORKERS":
            return {"workers": self.fleet.workers()}
        if kind == "JOBS":
            limit = min(msg.limit, self.settings.page_size)
            jobs = self.fleet.jobs(msg.batch_id, self.store.jobs(msg.batch_id, msg.offset, limit))
            return {"jobs": jobs, "next": jobs[-1]["job_id"] + 1 if len(jobs) == limit else None}
        if kind == "LOGS":
            return {"attempts": self.store.attempts_of(msg.batch_id, msg.job_id)}
        if kind == "ESTIMATE":
            found = self.store.seconds_per_frame(msg.recipe_hash, msg.preview)
            return {"seconds_per_frame": found[0], "jobs_measured": found[1]} if found else {}
        if kind == "SET_PRIORITY":
            self.store.set_priority(msg.batch_id, msg.priority)
            return self.store.summary(msg.batch_id)
        if kind == "CANCEL_BATCH":
            for attempt_id, worker_id in self.store.cancel(msg.batch_id):
                self._send("workers", worker_id.encode(), "CANCEL", p.Cancel(attempt_id=attempt_id))
            self._event(msg.batch_id, kind="batch", status="cancelled")
            return self.store.summary(msg.batch_id)
        if kind == "RETRY":
            return {"requeued": self.store.retry(msg.batch_id), **self.store.summary(msg.batch_id)}
        raise ValueError(f"unhandled {kind}")

    def _dataset_folder(self, out: str) -> Path:
        """Where a batch's dataset goes: a relative ``out`` under the dataset root; an absolute one must lie
        under it too unless the coordinator allows any folder. Symlinks are resolved before the check."""
        root = self.settings.out_root
        if out.startswith("~") or "\0" in out:
            raise RequestError(f"out {out[:80]!r}: give a path under the dataset root {root}, or a relative one")
        path = Path(os.path.abspath(root / out))
        too_long = [part for part in path.parts if len(part.encode()) > 255]
        if too_long:
            raise RequestError(f"out: the name {too_long[0][:40]!r}... is longer than 255 bytes")
        resolved = path.resolve()
        if not self.settings.any_out and not resolved.is_relative_to(root):
            raise RequestError(f"out {out[:200]!r} is outside this coordinator's dataset root {root}; give a "
                               "relative path or one under that root (or start the coordinator with --any-out)")
        if resolved.exists() and not resolved.is_dir():
            raise RequestError(f"out {out[:200]!r} is a file, not a folder")
        return resolved

    def _shared_root(self, recipe_dir: str) -> Path | None:
        """The allowed shared root a recipe folder lies under, or None."""
        folder = Path(os.path.abspath(recipe_dir)).resolve()
        return next((root for root in self.settings.shared_roots if folder.is_relative_to(root)), None)

    def _recipe_root(self, msg: p.Submit) -> Path:
        """The allowed shared root a recipe without inputs is read from (RequestError when there is none)."""
        root = self._shared_root(msg.recipe_dir)
        if root is not None:
            return root
        raise RequestError("this coordinator reads recipes from a shared file system only under "
                           + (", ".join(map(str, self.settings.shared_roots)) or "no folder (--shared-root is unset)")
                           + "; submit without --shared to send the recipe and its files")

    def _submit(self, msg: p.Submit) -> dict:
        count = len(msg.jobs) or msg.count
        if count > self.settings.max_jobs_per_batch:
            raise RequestError(f"count: {count} jobs is more than this coordinator takes in one batch "
                               f"({self.settings.max_jobs_per_batch}); split it into several batches")
        out = self._dataset_folder(msg.out)
        if msg.inputs:  # no shared file system: every input must be here, and the recipe is checked against them
            missing = [h for h in msg.inputs.values() if not self.transfer.blobs.has(h)]
            if missing:
                raise ValueError(f"{len(missing)} input files were not uploaded; upload them first (synthfarm submit "
                                 "does this)")
            if msg.inputs.get(msg.recipe_path) is None:
                raise ValueError(f"recipe_path {msg.recipe_path!r} is not one of the inputs")
            recipe = parse_recipe_text(msg.recipe, None, check_files=False, max_nodes=self.settings.max_yaml_nodes)
        else:  # a shared file system: nothing outside the allowed root is looked at
            root = self._recipe_root(msg)
            parse_recipe_text(msg.recipe, Path(msg.recipe_dir), check_files=False, root=root,
                              max_nodes=self.settings.max_yaml_nodes)
            recipe = parse_recipe_text(msg.recipe, Path(msg.recipe_dir), root=root)
        params = resolve_params(recipe, msg.params)
        jobs = []
        for i, job in enumerate(msg.jobs):
            try:
                jobs.append((resolve_params(recipe, job.params), job.seed))
            except ValueError as err:
                raise ValueError(f"job {i}: {err}") from None
        frames = 1 if msg.preview else recipe.frames
        writer = DatasetWriter(out)
        done = writer.open(msg.recipe, recipe.hash(), {"name": recipe.name, "batch": {
            "seed": msg.seed, "preview": msg.preview, "params": params}})
        batch, created = self.store.submit(msg.batch_id, name=msg.name or recipe.name, recipe=msg.recipe,
                                           recipe_dir=msg.recipe_dir, out=str(out), count=count, seed=msg.seed,
                                           params=params, frames=frames, preview=msg.preview,
                                           priority=msg.priority, inputs=msg.inputs, recipe_path=msg.recipe_path,
                                           recipe_hash=recipe.hash(), jobs=jobs)
        if created:
            self.fleet.set_requires(msg.batch_id, msg.requires)
        if created and done:  # resuming into a dataset: its complete jobs are not rendered again
            self.store.db.executemany("UPDATE jobs SET status='done' WHERE batch_id=? AND job_id=?",
                                      ((msg.batch_id, j) for j in done if j < count))
        if self.store.batch_finished(msg.batch_id):
            self._finish_batch(batch)
        return {**self.store.summary(msg.batch_id), "new": created}
