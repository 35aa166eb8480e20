"""The farm's messages: the ONE definition of what travels between workers, clients and the coordinator.

A message is three ZeroMQ frames: ``[VERSION, type, payload]`` where payload is the JSON of the type's
pydantic model (ROUTER sockets add the sender's identity in front). Anything else is a ProtocolError:
the coordinator counts and drops it, it never crashes on it.
"""
from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

VERSION = b"SF1"
MAX_FRAME = 64 * 1024 * 1024  # bytes; larger frames are dropped unread


class ProtocolError(ValueError):
    """A frame set that is not a valid synthfarm message."""


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- worker -> coordinator ------------------------------------------------------------------------------
class Hello(Payload):
    worker_id: str = Field(min_length=1, max_length=200)
    host: str = ""
    device: str = "CPU"
    running: Optional[str] = None  # an attempt the worker is still running (after a coordinator restart)


class Request(Payload):
    worker_id: str


class Heartbeat(Payload):
    worker_id: str
    attempt_id: Optional[str] = None


class Progress(Payload):
    attempt_id: str
    frames_done: int = Field(ge=0)
    frames_total: int = Field(ge=0)


class Done(Payload):
    attempt_id: str
    ok: bool
    error: str = ""
    frames: int = 0
    seconds: float = 0.0
    device: str = ""


class Bye(Payload):
    worker_id: str


# -- coordinator -> worker ------------------------------------------------------------------------------
class Welcome(Payload):
    heartbeat_seconds: float
    liveness: int
    transfer_port: int = 0  # the coordinator's transfer socket, on the host the worker connected to


class Task(Payload):
    attempt_id: str
    batch_id: str
    job_id: int
    recipe: str  # the recipe text
    recipe_dir: str  # where its relative paths point (shared file system)
    params: dict[str, Any]
    seed: int
    frames: int
    preview: bool
    staging: str  # the folder the attempt writes its files into; committed when DONE is accepted
    inputs: dict[str, str] = {}  # bundle path -> sha256; empty: recipe_dir and staging are on a shared file system
    recipe_path: str = ""  # the recipe's path inside the bundle
    bundle_root: str = ""  # set by the worker: where it laid the bundle out (no path may leave it)


class NoTask(Payload):
    retry_seconds: float = 1.0


class Cancel(Payload):
    attempt_id: str


# -- client <-> coordinator -----------------------------------------------------------------------------
class Submit(Payload):
    batch_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")  # the idempotency key
    name: str = ""
    recipe: str
    recipe_dir: str
    out: str  # the dataset folder
    count: int = Field(ge=1)
    seed: int = Field(0, ge=0)
    params: dict[str, Any] = {}
    preview: bool = False
    priority: int = Field(50, ge=0, le=100)
    inputs: dict[str, str] = {}  # bundle path -> sha256 of every input (uploaded first); empty: shared file system
    recipe_path: str = ""
    jobs: list[JobInput] = []  # per-job parameters and seeds (the batch API); empty: count jobs of `params`


class JobInput(Payload):
    params: dict[str, Any] = {}
    seed: int = Field(ge=0)


class Estimate(Payload):
    recipe_hash: str
    preview: bool = False


class BatchRef(Payload):
    batch_id: Optional[str] = None


class SetPriority(Payload):
    batch_id: str
    priority: int = Field(ge=0, le=100)


class Reply(Payload):
    ok: bool = True
    error: str = ""
    data: dict[str, Any] = {}


MESSAGES: dict[str, type[Payload]] = {
    "HELLO": Hello, "REQUEST": Request, "HEARTBEAT": Heartbeat, "PROGRESS": Progress, "DONE": Done, "BYE": Bye,
    "WELCOME": Welcome, "TASK": Task, "NO_TASK": NoTask, "CANCEL": Cancel,
    "SUBMIT": Submit, "STATUS": BatchRef, "LIST": BatchRef, "CANCEL_BATCH": BatchRef, "RETRY": BatchRef,
    "SET_PRIORITY": SetPriority, "WORKERS": BatchRef, "JOBS": BatchRef, "ESTIMATE": Estimate, "REPLY": Reply,
}
WORKER_TYPES = {"HELLO", "REQUEST", "HEARTBEAT", "PROGRESS", "DONE", "BYE"}
CLIENT_TYPES = {"SUBMIT", "STATUS", "LIST", "CANCEL_BATCH", "RETRY", "SET_PRIORITY", "WORKERS", "JOBS", "ESTIMATE"}


def encode(kind: str, payload: Payload) -> list[bytes]:
    if MESSAGES.get(kind) is not type(payload):
        raise ProtocolError(f"{kind} carries {MESSAGES.get(kind)}, not {type(payload).__name__}")
    return [VERSION, kind.encode(), payload.model_dump_json().encode()]


def decode(frames: list[bytes], allowed: set[str] | None = None) -> tuple[str, Payload]:
    """(type, payload) of a message's frames (without any routing identity); raises ProtocolError."""
    if len(frames) != 3:
        raise ProtocolError(f"expected 3 frames, got {len(frames)}")
    version, kind, body = frames
    if version != VERSION:
        raise ProtocolError(f"unknown protocol version {bytes(version)[:16]!r}")
    if any(len(f) > MAX_FRAME for f in frames):
        raise ProtocolError("frame too large")
    try:
        name = bytes(kind).decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError("message type is not ASCII") from None
    model = MESSAGES.get(name)
    if model is None or (allowed is not None and name not in allowed):
        raise ProtocolError(f"unexpected message type {name[:32]!r}")
    try:
        return name, model.model_validate_json(body)
    except (ValidationError, ValueError) as err:
        raise ProtocolError(f"bad {name} payload: {str(err)[:200]}") from None
