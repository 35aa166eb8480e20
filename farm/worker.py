"""The worker supervisor: owns the DEALER socket to the coordinator and a persistent Blender child.

It heartbeats while Blender renders (the child never touches the coordinator's socket), reconnects
when the coordinator falls silent (Paranoid Pirate), restarts the child when it dies (reporting the
attempt as failed), after ``max_jobs`` jobs or above ``max_rss_gb``, and kills it on CANCEL.
It holds up to ``ahead`` tasks besides the one its child renders (leased ahead), so the child starts the next
job the moment it finishes one instead of waiting for a round trip to the coordinator; a held task the
coordinator cancels is dropped unrun, and held tasks are given up when the worker reconnects or stops.
The child pipelines: it says when a task's frames are rendered, then renders the next task while the previous one's
files are made durable, and sends that one's result once they are (so the worker may have two attempts in its
child: one rendering, one finishing; a child that dies fails both, and both jobs go back to the queue). An
attempt's log is what the child printed from its start until its render was over.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections import deque
from pathlib import Path

import psutil
import zmq

from . import protocol as p
from .auth import secure_client
from ..addon.core.dataset.native import TMP_MARK
from .capabilities import detect
from .child import SCRATCH_PREFIX, Child, ChildCannotRun, ChildError, child_env, take_early
from .health import HealthFile
from .objectstore import StorageError
from .wake import Wake
from .transfer import (FRAME_FOLDERS, BlobStore, NoSpaceError, TransferError, bundle_key, pull_blob, regular_files,
                       safe_relative, transfer_socket, upload_outputs)

log = logging.getLogger(__name__)


def remove_orphan_scratch() -> None:
    """Delete the temp folders of Blender children whose supervisor is gone (killed before it could)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
        pid = folder.name[len(SCRATCH_PREFIX):].split("-")[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


class Worker:
    def __init__(self, connect: str, worker_id: str | None = None, *, blender: str | None = None, gpu: int | None = None,
                 device: str = "auto", max_jobs: int = 0, max_rss_gb: float = 0.0, context: zmq.Context | None = None,
                 work_dir: Path | None = None, keys: Path | None = None, ahead: int = 1):
        """``ahead``: tasks held besides the one rendering (0: ask for the next task only when idle)."""
        self.connect, self.keys = connect, keys
        self.work_dir = Path(work_dir or Path(tempfile.gettempdir()) / "synthfarm-worker")
        self.blobs = BlobStore(self.work_dir / "blobs")  # inputs by content hash, kept between jobs
        self.transfer_port = 0
        self._transfer_sock = None
        self._local: dict[str, Path] = {}  # attempt id -> its local staging folder (no shared file system)
        self._storage: dict[str, str] = {}  # attempt id -> the bucket its frames go to (object storage)
        self._s3 = None  # a boto3 client, made on the first attempt that writes to a bucket
        self._tick = lambda: None
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.blender, self.max_jobs, self.max_rss = blender, max_jobs, max_rss_gb * 1e9
        self.child_env = child_env(device, gpu)
        self.capabilities = detect(device, gpu)
        self.context = context or zmq.Context.instance()
        self.stop_event = threading.Event()
        self.wake = Wake(self.context)  # stop() wakes run() at once
        self.health: HealthFile | None = None  # rewritten every loop for a liveness probe (synthfarm health)
        self.heartbeat, self.liveness = 1.0, 3
        self.child: Child | None = None
        self.early_child: Child | None = None  # a child started before run() (child.start_early), taken by it
        self.attempt: str | None = None  # the attempt its child renders
        self.finishing: dict[str, str] = {}  # attempt -> its log: rendered by the child, its files being made durable
        self.recycle = ""  # why the child is restarted once it has no attempt left
        self.ahead = ahead
        self.held: deque[p.Task] = deque()  # tasks held ahead, in the order they run
        self._beat = {"next": 0.0}  # when the next heartbeat is due (run() keeps it)
        self.jobs_in_child = 0
        self.jobs_done = 0
        self.restarts = 0
        self.wakeups = 0  # times the loop woke up (asleep in between)
        self.fatal: str | None = None  # why this worker cannot render (its Blender child does not start)

    def stop(self) -> None:
        """Ask :meth:`run` (in another thread) to leave now, not at its next wake-up."""
        self.stop_event.set()
        self.wake.nudge()

    # -- the coordinator's socket --
    def _connect(self):
        sock = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTING_ID, self.worker_id.encode())
        if self.keys:
            secure_client(sock, self.keys, "worker")
        sock.connect(self.connect)
        sock.send_multipart(p.encode("HELLO", p.Hello(worker_id=self.worker_id, host=socket.gethostname(),
                                                         device=self.child_env["SYNTHFARM_DEVICE"],
                                                         running=self.attempt, capabilities=self.capabilities)))
        return sock

    def _start_child(self, tries: int = 3) -> None:
        """A new Blender child; one that dies while it starts (killed, out of memory) is started again."""
        if self.child is not None:
            self.child.kill()
            self.restarts += 1
        for attempt in range(tries):
            try:
                child, self.early_child = self.early_child, None  # started by the caller, once
                self.child = (child or Child(self.context, self.blender, self.child_env)).wait_ready()
                break
            except ChildError as err:
                if attempt == tries - 1 or isinstance(err, ChildCannotRun):  # it said why: again would not help
                    raise
                log.warning("%s; starting it again", err)
        self.jobs_in_child, self.recycle = 0, ""

    def run(self) -> None:
        """Serve until ``stop_event`` is set, or until the Blender child cannot start: then ``fatal`` says
        why and how to fix it, and the coordinator hears it in the worker's BYE."""
        remove_orphan_scratch()
        if self.blender is None:
            self.early_child = take_early(self.child_env)
        try:
            self._start_child()
        except ChildError as err:
            self._give_up(self._connect(), err)
            return
        sock = self._connect()
        beat = self._beat = {"next": time.monotonic()}  # a held task that starts is named in a heartbeat at once

        def tick():  # keeps heartbeating while files move
            if time.monotonic() >= beat["next"]:
                self._send(sock, "HEARTBEAT", p.Heartbeat(worker_id=self.worker_id, attempt_id=self.attempt))
                beat["next"] = time.monotonic() + self.heartbeat

        self._tick = tick
        heard = time.monotonic()
        next_request = time.monotonic()
        waiting = False  # a REQUEST is out
        wake = self.wake.socket()
        poller, polled = zmq.Poller(), ()
        try:
            while not self.stop_event.is_set():
                if polled[:2] != (sock, self.child.sock):  # a new socket after a reconnect or a new child
                    poller, polled = zmq.Poller(), (sock, self.child.sock, wake)
                    for each in polled:
                        poller.register(each, zmq.POLLIN)
                # asleep until a message or the next thing due (a heartbeat, a request): no busy loop while the
                # child renders; a child that dies is noticed within a heartbeat
                due = min(beat["next"], next_request if self._holds() <= self.ahead else beat["next"])
                ready = dict(poller.poll(max(10, min(self.heartbeat, due - time.monotonic()) * 1000)))
                self.wakeups += 1
                if self.stop_event.is_set():  # a signal arrived while polling: leave, the attempt is requeued
                    break
                now = time.monotonic()
                if sock in ready:
                    heard = now
                    waiting, next_request = self._on_coordinator(sock, waiting, next_request)
                if self.child.sock in ready:
                    self._on_child(sock)
                if not self.child.alive():
                    code = self.child.process.poll()
                    self.recycle = "dead"  # what it said before it died counts; nothing more is sent to it
                    while self.child.sock.poll(0):
                        self._on_child(sock)
                    if self.attempt or self.finishing:
                        log.error("Blender child died (exit code %s) during attempt(s) %s; restarting it", code,
                                  ", ".join([*self.finishing, *([self.attempt] if self.attempt else [])]))
                        self.child.output.wait(1.0)  # its last words, which say why
                        self._fail_in_child(sock, f"the Blender process died (exit code {code})")
                    self._start_child()
                    self._start_held()
                elif self.recycle and not self.attempt and not self.finishing:
                    log.info("recycling the Blender child %s", self.recycle)
                    self._start_child()
                    self._start_held()
                tick()
                if self.health:
                    self.health.beat(role="worker", attempt=self.attempt or "idle")
                if now - heard > self.heartbeat * self.liveness * 2:
                    log.warning("coordinator silent for %.1f s; reconnecting", now - heard)
                    self._drop_held()  # the coordinator requeues them when this worker says HELLO again
                    sock.close(linger=0)
                    sock, heard, waiting = self._connect(), now, False
                if self._holds() <= self.ahead and not waiting and now >= next_request:
                    holding = [*self.finishing, *[a for a in (self.attempt, *(t.attempt_id for t in self.held)) if a]]
                    self._send(sock, "REQUEST", p.Request(worker_id=self.worker_id, holding=holding,
                                                          rendered=list(self.finishing),
                                                          take=1 + self.ahead - self._holds()))
                    waiting, next_request = True, now + self.heartbeat * self.liveness  # ask again if unanswered
                elif waiting and now >= next_request:
                    waiting = False
        except ChildError as err:  # a restarted child did not come up
            self.child = None
            self._give_up(sock, err)
        finally:
            try:
                sock.send_multipart(p.encode("BYE", p.Bye(worker_id=self.worker_id)), zmq.NOBLOCK)
            except zmq.ZMQError:
                pass
            sock.close(linger=0)
            wake.close(linger=0)
            if self.child is not None:  # a job in progress is not waited for: its attempt is requeued
                self.child.kill() if self.attempt or self.finishing else self.child.stop()
            if self._transfer_sock is not None:
                self._transfer_sock.close(linger=0)

    def _give_up(self, sock, err: ChildError) -> None:
        """This worker cannot render: say why in the log and in a BYE the coordinator keeps, then stop."""
        self.fatal = str(err)
        log.error("worker %s cannot render: %s", self.worker_id, err)
        sock.send_multipart(p.encode("BYE", p.Bye(worker_id=self.worker_id, error=self.fatal)))
        sock.close(linger=2000)  # time for the BYE to leave

    # -- no shared file system: inputs in, outputs out --
    def _transfer(self, fresh: bool = False):
        if fresh and self._transfer_sock is not None:
            self._transfer_sock.close(linger=0)
            self._transfer_sock = None
        if self._transfer_sock is None:
            host = self.connect.rsplit(":", 1)[0]
            self._transfer_sock = transfer_socket(self.context, f"{host}:{self.transfer_port}", self.keys, "worker",
                                                  identity=self.worker_id.encode())
        return self._transfer_sock

    def _localise(self, task: p.Task) -> p.Task:
        """Fetch the inputs this machine lacks, lay the bundle out, and point the task at local folders."""
        for digest in sorted(set(task.inputs.values())):
            if not self.blobs.has(digest):
                pull_blob(self._transfer(), digest, self.blobs, tick=self._tick)
        bundle = self.blobs.layout(task.inputs, self.work_dir / "bundles" / bundle_key(task.inputs))
        staging = self.work_dir / "attempts" / task.attempt_id
        self._local[task.attempt_id] = staging
        recipe_dir = (bundle / safe_relative(task.recipe_path)).parent
        return task.model_copy(update={"recipe_dir": str(recipe_dir), "staging": str(staging),
                                       "bundle_root": str(bundle)})

    def _upload(self, staging: Path, attempt_id: str) -> None:
        """The attempt's frame files (nothing else of its folder); resumed across a coordinator restart."""
        files = [rel for rel, _ in regular_files(staging) if rel.split("/")[0] in FRAME_FOLDERS and TMP_MARK not in rel]
        upload_outputs(self._transfer, staging, attempt_id, files, tick=self._tick,
                       timeout=self.heartbeat * self.liveness * 2)

    def _upload_to_bucket(self, staging: Path, attempt_id: str, storage: str) -> dict:
        from . import objectstore

        if self._s3 is None:
            self._s3 = objectstore.client()
        return objectstore.upload_attempt(self._s3, objectstore.Location.parse(storage), attempt_id, staging,
                                          tick=self._tick)

    def _send(self, sock, kind: str, payload: p.Payload) -> None:
        try:
            sock.send_multipart(p.encode(kind, payload), zmq.NOBLOCK)
        except zmq.Again:
            pass

    def _holds(self) -> int:
        """Tasks rendering or waiting to (not those whose files the child is finishing)."""
        return (1 if self.attempt else 0) + len(self.held)

    def _fail_in_child(self, sock, why: str) -> None:
        """The child is gone with its attempts: each fails (its job goes back to the queue, as any failed
        attempt's): the one it rendered, and those whose frames it had rendered but not yet made durable."""
        ended = [(a, f"{why} while it made this job's files durable (its frames were rendered)", tail)
                 for a, tail in self.finishing.items()]
        if self.attempt:
            ended.append((self.attempt, why, self.child.output.text()))
        for attempt, error, tail in ended:
            self._send(sock, "DONE", p.Done(attempt_id=attempt, ok=False, error=error, log_tail=tail))
            shutil.rmtree(self._local.pop(attempt, self.work_dir / "none"), ignore_errors=True)
            self._storage.pop(attempt, None)
        self.finishing.clear()
        self.attempt = None

    def _settle(self, sock) -> None:
        """Before the child is stopped: the jobs whose files it is making durable end first (a DONE each)."""
        deadline = time.monotonic() + self.heartbeat * self.liveness
        while self.finishing and self.child.alive() and time.monotonic() < deadline:
            if self.child.sock.poll(max(1, (deadline - time.monotonic()) * 1000)):
                self._on_child(sock)
        if self.finishing:
            self._fail_in_child(sock, "the Blender process was stopped (the job it rendered was cancelled)")

    def _drop_held(self) -> None:
        while self.held:
            shutil.rmtree(self._local.pop(self.held.popleft().attempt_id, self.work_dir / "none"), ignore_errors=True)

    def _start(self, task: p.Task) -> None:
        self.attempt = task.attempt_id
        self.child.output.restart()  # the attempt's log starts here
        self.child.sock.send_json({"task": task.model_dump()})

    def _start_held(self) -> None:
        """The child is free: it starts the next held task, and the coordinator hears so in a heartbeat now."""
        if self.held and not self.attempt and not self.recycle:
            self._start(self.held.popleft())
            self._beat["next"] = 0.0

    def _take(self, sock, msg: p.Task) -> None:
        """A task from the coordinator: its inputs fetched, then rendered now, or held until the child is free."""
        if msg.attempt_id == self.attempt or any(t.attempt_id == msg.attempt_id for t in self.held):
            return  # the same task again: it is already here
        try:
            task = self._localise(msg) if msg.inputs else msg
            if msg.storage:  # frames go to a bucket: render into a local folder, upload from there
                staging = self.work_dir / "attempts" / msg.attempt_id
                self._local[msg.attempt_id], self._storage[msg.attempt_id] = staging, msg.storage
                task = task.model_copy(update={"staging": str(staging)})
        except TransferError as err:
            self._send(sock, "DONE", p.Done(attempt_id=msg.attempt_id, ok=False, error=f"inputs: {err}"))
            return
        self.held.append(task)
        self._start_held()

    def _on_coordinator(self, sock, waiting: bool, next_request: float) -> tuple[bool, float]:
        try:
            kind, msg = p.decode(sock.recv_multipart(), {"WELCOME", "TASK", "TASKS", "NO_TASK", "CANCEL",
                                                         "HEARTBEAT"})
        except p.VersionMismatch as err:  # another synthfarm release: nothing this worker says will be understood
            self.fatal = str(err)
            log.error("worker %s stops: %s", self.worker_id, err)
            self.stop_event.set()
            return waiting, next_request
        except p.ProtocolError as err:
            log.warning("ignored a coordinator message: %s", err)
            return waiting, next_request
        if kind == "WELCOME":
            self.heartbeat, self.liveness = msg.heartbeat_seconds, msg.liveness
            self.transfer_port = msg.transfer_port
        elif kind in ("TASK", "TASKS"):
            for task in (msg.tasks if kind == "TASKS" else [msg]):
                self._take(sock, task)
            return False, time.monotonic()  # ask for more at once if there is room, else when this one is done
        elif kind == "NO_TASK":
            return False, time.monotonic() + msg.retry_seconds
        elif kind == "CANCEL" and msg.attempt_id == self.attempt:
            log.info("cancelling attempt %s: stopping the Blender child", msg.attempt_id)
            shutil.rmtree(self._local.pop(self.attempt, self.work_dir / "none"), ignore_errors=True)
            self._storage.pop(self.attempt, None)
            self.attempt = None
            self._settle(sock)
            self._start_child()
            self._start_held()
        elif kind == "CANCEL" and msg.attempt_id in self.finishing:
            log.info("cancelling attempt %s: its result will not be sent", msg.attempt_id)
            del self.finishing[msg.attempt_id]  # its files go when the child is done with them
        elif kind == "CANCEL" and any(t.attempt_id == msg.attempt_id for t in self.held):
            log.info("cancelling held attempt %s: it will not run", msg.attempt_id)
            self.held = deque(t for t in self.held if t.attempt_id != msg.attempt_id)
            shutil.rmtree(self._local.pop(msg.attempt_id, self.work_dir / "none"), ignore_errors=True)
        return waiting, next_request

    def _on_child(self, sock) -> None:
        message = self.child.sock.recv_json()
        if "progress" in message:
            if message["progress"]["attempt_id"] in (self.attempt, *self.finishing):
                self._send(sock, "PROGRESS", p.Progress(**message["progress"]))
            return
        if "rendered" in message:
            if message["rendered"]["attempt_id"] == self.attempt:
                # its log: all the child printed before its render was over (it marks the end; what it prints
                # while the job's files are written belongs to the next attempt's log), taken before that one starts
                self.finishing[self.attempt] = self.child.output.until_end(self.attempt)
                self._rendered()
            return
        result = message.get("done")
        if not result:
            return
        attempt = result["attempt_id"]
        ended = result.pop("output_ended", False)
        if attempt in self.finishing:
            log_tail = self.finishing.pop(attempt)
        elif attempt == self.attempt:  # it failed before its frames were all rendered (or a child that does not
            log_tail = self.child.output.until_end(attempt) if ended else self.child.output.text()  # pipeline)
            self._rendered()
        else:  # cancelled while its files were written: they go now
            shutil.rmtree(self._local.pop(attempt, self.work_dir / "none"), ignore_errors=True)
            self._storage.pop(attempt, None)
            return
        self.jobs_done += 1
        local, storage = self._local.pop(attempt, None), self._storage.pop(attempt, None)
        if local is not None:
            if result["ok"]:
                try:
                    if storage:
                        result["manifest"] = self._upload_to_bucket(local, attempt, storage)
                    else:
                        self._upload(local, attempt)
                except (TransferError, StorageError) as err:
                    result = {"attempt_id": attempt, "ok": False, "error": f"upload: {err}",
                              "reason": "no_space" if isinstance(err, NoSpaceError) else ""}
            shutil.rmtree(local, ignore_errors=True)
        self._send(sock, "DONE", p.Done(**result, log_tail=log_tail))

    def _rendered(self) -> None:
        """The child has rendered its attempt: it renders the next held task now (while this one's files are
        made durable and go up), unless it is due for a recycle (then once it has no attempt left)."""
        self.attempt = None
        self.jobs_in_child += 1
        if self.max_jobs and self.jobs_in_child >= self.max_jobs:
            self.recycle = f"after {self.jobs_in_child} jobs"
        elif self.max_rss and self.child.rss_bytes() > self.max_rss:
            self.recycle = f"at {self.child.rss_bytes() / 1e9:.2f} GB"
        self._start_held()
