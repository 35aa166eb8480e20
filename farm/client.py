"""Talking to a coordinator as a client: one request, one reply, with a timeout (no hanging on a dead
coordinator). The batch API (Session, Batch) builds on this."""
from __future__ import annotations

import threading
import uuid

import zmq
from zmq.utils.monitor import recv_monitor_message

from . import protocol as p


HANDSHAKE_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)


class FarmError(Exception):
    """The coordinator refused a request (its message says why) or did not answer."""


class FarmClient:
    """Requests to a coordinator over one DEALER socket, kept between requests (the ZeroMQ guide's Lazy Pirate):
    a request that gets no answer in time, or is refused, closes the socket, and the next one opens a fresh one, so
    a late reply is never taken for another request's. Threads take turns. :meth:`close` (or a ``with`` block)
    closes the socket: a ZeroMQ context is terminated only once its sockets are."""

    def __init__(self, endpoint: str, timeout: float = 10.0, context: zmq.Context | None = None,
                 keys=None):
        self.endpoint, self.timeout, self.keys = endpoint, timeout, keys
        self.context = context or zmq.Context.instance()
        self._sock = self._monitor = self._poller = None
        self._turn = threading.Lock()

    def _open(self) -> None:
        sock = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTING_ID, f"client-{uuid.uuid4().hex[:12]}".encode())
        if self.keys:
            from .auth import secure_client

            secure_client(sock, self.keys, "client")
        self._monitor = sock.get_monitor_socket(HANDSHAKE_FAILED)  # a refused handshake is said at once
        sock.connect(self.endpoint)
        self._sock, self._poller = sock, zmq.Poller()
        self._poller.register(sock, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.disable_monitor()
            self._monitor.close(linger=0)
            self._sock.close(linger=0)
            self._sock = self._monitor = self._poller = None

    def close(self) -> None:
        with self._turn:
            self._close()

    def __enter__(self) -> "FarmClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, kind: str, payload: p.Payload) -> dict:
        """Send one request and return the reply's data; raises FarmError."""
        with self._turn:
            kept = self._sock is not None
            if not kept:
                self._open()
            try:
                while kept and self._monitor.poll(0):  # an event after an earlier exchange, not of this request
                    recv_monitor_message(self._monitor)
                self._sock.send_multipart(p.encode(kind, payload))
                ready = dict(self._poller.poll(int(self.timeout * 1000)))
                if self._sock not in ready and self._monitor in ready:
                    raise FarmError(self._refused(recv_monitor_message(self._monitor)["event"]))
                if self._sock not in ready:
                    raise FarmError(f"no answer from the coordinator at {self.endpoint} within {self.timeout:g} s; "
                                    "is it running (synthfarm coordinator)?")
                _, reply = p.decode(self._sock.recv_multipart(), {"REPLY"})
            except BaseException:  # no answer, refused, garbled or interrupted: the next request starts afresh
                self._close()
                raise
        if not reply.ok:
            raise FarmError(reply.error)
        return reply.data

    def _refused(self, event: int) -> str:
        if not self.keys:
            why = "it uses keys and we do not; pass --keys with the folder from its `synthfarm keys init`"
        elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            why = f"it does not authorize our client key; use client.key_secret from its keys folder (not {self.keys})"
        else:
            why = (f"our coordinator.key ({self.keys}) is not its key, or it uses no keys; use coordinator.key and "
                   "client.key_secret from its keys folder")
        return f"the coordinator at {self.endpoint} refused the connection: {why}"

    def submit(self, **fields) -> dict:
        return self.request("SUBMIT", p.Submit(**fields))

    def upload_inputs(self, root, manifest: dict[str, str]) -> int:
        """Upload the input files the coordinator lacks (by content hash). Returns how many were sent."""
        from pathlib import Path

        from .transfer import TransferError, _recv, _send, push_file, transfer_socket

        port = self.status()["transfer_port"]
        sock = transfer_socket(self.context, f"{self.endpoint.rsplit(':', 1)[0]}:{port}", self.keys, "client")
        try:
            _send(sock, "HAS_BLOBS", {"hashes": sorted(set(manifest.values()))})
            missing = set(_recv(sock, self.timeout)[1]["missing"])
            sent = 0
            for rel, digest in sorted(manifest.items()):
                if digest in missing:
                    push_file(sock, "PUT_BLOB", {"hash": digest}, Path(root) / rel, timeout=self.timeout)
                    missing.discard(digest)
                    sent += 1
        except TransferError as err:
            raise FarmError(f"uploading inputs: {err}") from None
        finally:
            sock.close()
        return sent

    def status(self, batch_id: str | None = None) -> dict:
        return self.request("STATUS", p.BatchRef(batch_id=batch_id))

    def cancel(self, batch_id: str) -> dict:
        return self.request("CANCEL_BATCH", p.BatchRef(batch_id=batch_id))

    def retry(self, batch_id: str) -> dict:
        return self.request("RETRY", p.BatchRef(batch_id=batch_id))

    def set_priority(self, batch_id: str, priority: int) -> dict:
        return self.request("SET_PRIORITY", p.SetPriority(batch_id=batch_id, priority=priority))

    def logs(self, batch_id: str, job_id: int) -> list[dict]:
        """Every attempt of a job: worker, outcome, error and the end of its Blender log."""
        return self.request("LOGS", p.JobRef(batch_id=batch_id, job_id=job_id))["attempts"]

    def workers(self) -> list[dict]:
        return self.request("WORKERS", p.BatchRef())["workers"]

    def download(self, batch_id: str, target, progress=None) -> tuple[int, int]:
        """Copy a batch's dataset folder into ``target``; files already there with the same size are
        skipped, so an interrupted download resumes. Returns (files fetched, files skipped)."""
        out = self.status(batch_id)["out"]
        if out.startswith("s3://"):  # the dataset is in a bucket: read it from there, not through the coordinator
            from . import objectstore

            try:
                return objectstore.download_dataset(objectstore.client(), objectstore.Location.parse(out),
                                                    target, progress)
            except objectstore.StorageError as err:
                raise FarmError(f"downloading {batch_id} from {out}: {err}") from None
        from pathlib import Path

        from .transfer import TransferError, _recv, _send, pull, safe_relative, transfer_socket

        port = self.status()["transfer_port"]
        sock = transfer_socket(self.context, f"{self.endpoint.rsplit(':', 1)[0]}:{port}", self.keys, "client")
        fetched = skipped = 0
        try:
            _send(sock, "LIST_OUTPUT", {"batch_id": batch_id})
            files = _recv(sock, self.timeout)[1]["files"]
            for i, (rel, size) in enumerate(files):
                local = Path(target) / safe_relative(rel)
                if local.is_file() and local.stat().st_size == size:
                    skipped += 1
                else:
                    local.parent.mkdir(parents=True, exist_ok=True)
                    pull(sock, "GET_OUTPUT", {"batch_id": batch_id, "path": rel}, local, timeout=self.timeout)
                    fetched += 1
                if progress:
                    progress(i + 1, len(files))
        except TransferError as err:
            raise FarmError(f"downloading {batch_id}: {err}") from None
        finally:
            sock.close()
        return fetched, skipped
