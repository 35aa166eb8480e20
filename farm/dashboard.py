"""A read-only web page of the farm: batches (progress, throughput, ETA), their jobs, and the workers.

The dashboard is a client of the coordinator like any other: it asks over the clients' socket (STATUS,
WORKERS, JOBS) and follows the events' PUB socket, which it relays to the page as Server-Sent Events
(the page refreshes what an event concerns, no polling). It serves from Python's own HTTP server in a
thread of the coordinator's process (``synthfarm coordinator --dashboard PORT``).

Access: with a farm that uses keys, every request must carry the dashboard's token (``?token=`` or an
``Authorization: Bearer`` header) and the page may listen on the coordinator's address; without keys it
listens on loopback only and asks for no token.
"""
from __future__ import annotations

import hmac
import json
import logging
import secrets
import threading
import time
from collections import defaultdict, deque
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import zmq

from . import protocol as p
from .auth import secure_client
from .client import FarmClient, FarmError

log = logging.getLogger(__name__)
WINDOW = 600.0  # seconds of finished jobs that throughput is measured over
MAX_STREAMS = 32  # event streams (open pages) at once
JOBS_PAGE = 100


class DashboardError(Exception):
    pass


class Throughput:
    """Jobs finished per second and batch, over the last ``WINDOW`` seconds of job events."""

    def __init__(self):
        self._done: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def add(self, batch_id: str, when: float) -> None:
        with self._lock:
            done = self._done[batch_id]
            done.append(when)
            while done and when - done[0] > WINDOW:
                done.popleft()

    def rate(self, batch_id: str, now: float) -> float | None:
        with self._lock:
            done = [t for t in self._done.get(batch_id, ()) if now - t <= WINDOW]
        if len(done) < 2:
            return None
        return (len(done) - 1) / max(done[-1] - done[0], 1e-3)


def batch_view(batch: dict, rate: float | None, now: float) -> dict:
    """A batch with progress, throughput (jobs/s; from the event window, else since it was created) and ETA."""
    jobs = batch["jobs"]
    finished = jobs["done"] + jobs["failed"]
    remaining = jobs["queued"] + jobs["running"]
    if rate is None and jobs["done"] and now > batch["created"]:
        rate = jobs["done"] / (now - batch["created"])
    eta = remaining / rate if rate and remaining else (0.0 if not remaining else None)
    state = "finished" if batch["status"] == "active" and not remaining else batch["status"]
    return {**batch, "state": state, "progress": finished / batch["count"] if batch["count"] else 1.0,
            "jobs_per_second": rate, "eta_seconds": eta}


class Dashboard:
    def __init__(self, clients: str, events: str, *, bind: str = "127.0.0.1", port: int = 0,
                 keys: Path | None = None, token: str | None = None, context: zmq.Context | None = None):
        self.clients, self.events, self.keys = clients, events, keys
        self.context = context or zmq.Context.instance()
        self.token = (token or secrets.token_urlsafe(24)) if keys else None
        self.client = FarmClient(clients, timeout=5, context=self.context, keys=keys)
        self.throughput = Throughput()
        self.streams = threading.BoundedSemaphore(MAX_STREAMS)
        self.stop_event = threading.Event()
        self.page = resources.files(__package__).joinpath("dashboard.html").read_bytes()
        self.server = ThreadingHTTPServer((bind, port), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://{bind}:{self.server.server_address[1]}/" + (f"?token={self.token}" if self.token else "")
        self._threads = [threading.Thread(target=self.server.serve_forever, name="dashboard", daemon=True),
                         threading.Thread(target=self._follow, name="dashboard-events", daemon=True)]

    def start(self) -> "Dashboard":
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self.client.close()

    # -- the coordinator's side ------------------------------------------------------------------------
    def subscribe(self) -> zmq.Socket:
        sock = self.context.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        if self.keys:
            secure_client(sock, self.keys, "client")
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(self.events)
        return sock

    def _follow(self) -> None:
        """Record when jobs finish, for throughput."""
        sock = self.subscribe()
        try:
            while not self.stop_event.is_set():
                if sock.poll(500):
                    batch_id, event = decode_event(sock.recv_multipart())
                    if event.get("kind") == "job" and event.get("outcome") == "done":
                        self.throughput.add(batch_id, time.time())
        finally:
            sock.close()

    def state(self, batch_id: str | None, offset: int) -> dict:
        now = time.time()
        status = self.client.status()
        batches = [batch_view(b, self.throughput.rate(b["id"], now), now) for b in status["batches"]]
        workers = self.client.workers()
        for worker in workers:
            worker["seen_seconds_ago"] = max(0.0, now - worker.get("last_seen", now))
        chosen = batch_id or next((b["id"] for b in reversed(batches) if b["state"] == "active"),
                                  batches[-1]["id"] if batches else None)
        jobs = self.client.request("JOBS", p.JobsPage(batch_id=chosen, offset=offset, limit=JOBS_PAGE))["jobs"] \
            if chosen else []
        return {"time": now, "batches": batches, "workers": workers,
                "jobs": {"batch_id": chosen, "offset": offset, "page": JOBS_PAGE, "items": jobs}}

    # -- HTTP ------------------------------------------------------------------------------------------
    def _handler(self):
        dashboard = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "synthfarm-dashboard"

            def log_message(self, fmt, *args):  # through logging, not stderr
                log.debug("dashboard %s: " + fmt, self.address_string(), *args)

            def do_GET(self):
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                if not dashboard._allowed(query.get("token"), self.headers.get("Authorization", "")):
                    return self._send(HTTPStatus.UNAUTHORIZED, b"this farm's dashboard needs its token: open the "
                                      b"address the coordinator printed (?token=...)\n", "text/plain")
                if url.path == "/":
                    return self._send(HTTPStatus.OK, dashboard.page, "text/html; charset=utf-8")
                if url.path == "/api/state":
                    try:
                        offset = max(0, int(query.get("offset", 0)))
                        body = dashboard.state(query.get("batch") or None, offset)
                    except ValueError:
                        return self._send(HTTPStatus.BAD_REQUEST, b'{"error": "offset must be an integer"}')
                    except FarmError as err:
                        return self._send(HTTPStatus.BAD_GATEWAY, json.dumps({"error": str(err)}).encode())
                    return self._send(HTTPStatus.OK, json.dumps(body).encode())
                if url.path == "/api/events":
                    return self._stream()
                return self._send(HTTPStatus.NOT_FOUND, b'{"error": "not found"}')

            def _send(self, code, body: bytes, kind="application/json"):
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("X-Content-Type-Options", "nosniff")
                self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                 "script-src 'self' 'unsafe-inline'")
                self.end_headers()
                self.wfile.write(body)

            def _stream(self):
                """The coordinator's events as Server-Sent Events, with a comment every 10 s to notice a closed
                page."""
                if not dashboard.streams.acquire(blocking=False):
                    return self._send(HTTPStatus.SERVICE_UNAVAILABLE, b'{"error": "too many open pages"}')
                sock = dashboard.subscribe()
                try:
                    self.send_response(HTTPStatus.OK)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Cache-Control", "no-store")
                    self.end_headers()
                    self.wfile.write(b": connected\n\n")
                    self.wfile.flush()
                    quiet_since = time.monotonic()
                    while not dashboard.stop_event.is_set():
                        if sock.poll(500):
                            batch_id, event = decode_event(sock.recv_multipart())
                            payload = json.dumps({"batch_id": batch_id, **event})
                            self.wfile.write(f"data: {payload}\n\n".encode())
                            self.wfile.flush()
                            quiet_since = time.monotonic()
                        elif time.monotonic() - quiet_since > 10:
                            self.wfile.write(b": keep-alive\n\n")
                            self.wfile.flush()
                            quiet_since = time.monotonic()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the page was closed
                finally:
                    sock.close()
                    dashboard.streams.release()

        return Handler

    def _allowed(self, token: str | None, authorization: str) -> bool:
        if self.token is None:
            return True
        given = token or authorization.removeprefix("Bearer ").strip()
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())


def decode_event(frames: list[bytes]) -> tuple[str, dict]:
    try:
        return frames[0].decode(errors="replace"), json.loads(frames[1])
    except (IndexError, ValueError):
        return "", {"kind": "unknown"}
