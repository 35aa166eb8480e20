"""The farm's messages: the ONE definition of what travels between workers, clients and the coordinator.

A message is three ZeroMQ frames: ``[VERSION, type, payload]`` where payload is the JSON of the type's
pydantic model (ROUTER sockets add the sender's identity in front). Anything else is a ProtocolError:
the coordinator counts and drops it, it never crashes on it. A peer of another protocol version gets a
VersionMismatch, and a REFUSED message that names both versions (see :func:`refusal`).

SF2 (lease ahead): REQUEST says how many tasks the worker can take and which attempts it still holds; the
coordinator answers with TASK (one) or TASKS (several); RESULTS carries several DONEs in one message.
"""
from __future__ import annotations

import json
import math
from typing import Annotated, Any, Optional, Union

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .capabilities import Capabilities, Requirements

VERSION = b"SF3"
VERSION_PREFIX = b"SF"  # what every synthfarm version tag starts with
MAX_TAKE = 256  # tasks one REQUEST may ask for (one running, the rest held ahead)
MAX_FRAME = 64 * 1024 * 1024  # bytes; larger frames are dropped unread
# limits of single fields, checked when a message is decoded (the coordinator's own limits are in settings.py)
MAX_NAME = 200  # ids and names
MAX_PATH = 4096  # a path, as text
MAX_RECIPE = 1024 * 1024  # a recipe's text, in characters
MAX_ERROR = 4000  # a job's error text is cut to this
MAX_SEED = 2 ** 63 - 1  # seeds and counts are stored as SQLite integers
MAX_INPUTS = 100_000  # files in one bundle
MAX_VALUE_TEXT = 10_000  # a string parameter value
MAX_LOG = 16 * 1024  # the end of an attempt's Blender output that travels with its result
SHA256 = r"^[0-9a-f]{64}$"


class ProtocolError(ValueError):
    """A frame set that is not a valid synthfarm message."""


class VersionMismatch(ProtocolError):
    """A synthfarm message of another protocol version: the two sides run different synthfarm releases."""

    def __init__(self, theirs: bytes):
        self.theirs = theirs.decode("ascii", "replace")
        super().__init__(f"the peer speaks synthfarm protocol {self.theirs}, this side {VERSION.decode()}: run the "
                         "same synthfarm version on the coordinator, its workers and its clients")


def refusal(theirs: bytes) -> list[bytes]:
    """The answer to a message of another protocol version: ``[our VERSION, b"REFUSED", {"error": ...}]``. Any
    version's decode rejects it naming our version (it is not theirs), and ours says both in its error."""
    return [VERSION, b"REFUSED", json.dumps({"error": str(VersionMismatch(theirs))}).encode()]


def _plain(value: Any, where: str = "value", depth: int = 0) -> Any:
    """A parameter value that every later step can store and compare: JSON scalars (finite floats, integers
    that fit 64 bits, bounded strings) and short lists of them."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if not -MAX_SEED - 1 <= value <= MAX_SEED:
            raise ValueError(f"{where}: {str(value)[:24]}... does not fit in 64 bits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value} is not a finite number")
        return value
    if isinstance(value, str):
        if len(value) > MAX_VALUE_TEXT:
            raise ValueError(f"{where}: text longer than {MAX_VALUE_TEXT} characters")
        return value
    if isinstance(value, list) and depth < 3 and len(value) <= 1000:
        return [_plain(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    raise ValueError(f"{where}: {type(value).__name__} values are not accepted (numbers, text, true/false, "
                     "short lists)")


def _plain_params(params: dict) -> dict:
    if len(params) > 1000:
        raise ValueError("more than 1000 parameters")
    for name in params:
        if len(name) > MAX_NAME:
            raise ValueError(f"parameter name longer than {MAX_NAME} characters")
    return {name: _plain(v, f"parameter {name}") for name, v in params.items()}


def _cut(limit: int):
    return BeforeValidator(lambda v: v[:limit] if isinstance(v, str) else v)


Name = Annotated[str, Field(max_length=MAX_NAME)]
PathText = Annotated[str, Field(max_length=MAX_PATH)]
Params = Annotated[dict[str, Any], AfterValidator(_plain_params)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- worker -> coordinator ------------------------------------------------------------------------------
class Hello(Payload):
    worker_id: str = Field(min_length=1, max_length=MAX_NAME)
    host: str = Field("", max_length=255)
    device: str = Field("CPU", max_length=64)
    running: Optional[Name] = None  # an attempt the worker is still running (after a coordinator restart)
    capabilities: Optional[Capabilities] = None  # device, GPU model and memory (farm/capabilities.py)


class Request(Payload):
    worker_id: Name
    take: int = Field(1, ge=1, le=MAX_TAKE)  # how many tasks the worker can take now (1 + how many it holds ahead)
    # the attempts the worker still holds (running or held ahead): any other attempt leased to it is over
    holding: list[Name] = Field([], max_length=MAX_TAKE)
    # those of ``holding`` whose frames are rendered (the child makes their files durable): its child is free, so
    # a worker that holds nothing else takes its next task as one that holds nothing does, not as one held ahead
    rendered: list[Name] = Field([], max_length=MAX_TAKE)


class Heartbeat(Payload):
    worker_id: Name
    attempt_id: Optional[Name] = None


class Progress(Payload):
    attempt_id: Name
    frames_done: int = Field(ge=0, le=1_000_000)
    frames_total: int = Field(ge=0, le=1_000_000)


class Done(Payload):
    attempt_id: Name
    ok: bool
    error: Annotated[str, _cut(MAX_ERROR)] = ""
    reason: str = Field("", max_length=32)  # "no_space": the dataset's disk is full (a batch condition)
    frames: int = Field(0, ge=0, le=1_000_000)
    seconds: float = Field(0.0, ge=0, allow_inf_nan=False)
    device: str = Field("", max_length=64)
    log_tail: Annotated[str, BeforeValidator(lambda v: v[-MAX_LOG:] if isinstance(v, str) else v)] = ""
    # object storage: {path in the dataset: {"sha256", "size"}} of what the attempt staged
    manifest: dict[PathText, dict[str, Union[str, int]]] = Field({}, max_length=100_000)


class Results(Payload):
    """Several attempts' ends in one message (each as its DONE would say it)."""
    results: list[Done] = Field(min_length=1, max_length=MAX_TAKE)


class Bye(Payload):
    worker_id: Name
    error: str = ""  # why the worker stops, when it cannot render (e.g. its Blender does not start)


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
    storage: str = ""  # s3://bucket/prefix: upload the frames to the attempt's staging prefix there


class Tasks(Payload):
    """Several tasks in one message: the worker runs them in this order, one at a time, holding the others."""
    tasks: list[Task] = Field(min_length=1, max_length=MAX_TAKE)


class NoTask(Payload):
    retry_seconds: float = 1.0


class Cancel(Payload):
    attempt_id: str


# -- client <-> coordinator -----------------------------------------------------------------------------
class Submit(Payload):
    batch_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")  # the idempotency key
    name: Name = ""
    recipe: str = Field(max_length=MAX_RECIPE)
    recipe_dir: PathText
    out: str = Field(min_length=1, max_length=MAX_PATH)  # the dataset folder (relative: under the coordinator's root)
    count: int = Field(ge=1, le=MAX_SEED)
    seed: Seed = 0
    params: Params = {}
    preview: bool = False
    priority: int = Field(50, ge=0, le=100)
    # bundle path -> sha256 of every input (uploaded first); empty: a shared file system the coordinator allows
    inputs: dict[PathText, Annotated[str, Field(pattern=SHA256)]] = Field({}, max_length=MAX_INPUTS)
    recipe_path: PathText = ""
    jobs: list[JobInput] = []  # per-job parameters and seeds (the batch API); empty: count jobs of `params`
    requires: Requirements = Requirements()  # what a worker needs to take this batch's jobs


class JobInput(Payload):
    params: Params = {}
    seed: Seed


class Estimate(Payload):
    recipe_hash: Name
    preview: bool = False


class BatchRef(Payload):
    batch_id: Optional[Name] = None


class JobsPage(Payload):
    batch_id: Name
    offset: int = Field(0, ge=0, le=MAX_SEED)  # the first job id of the page
    limit: int = Field(1000, ge=1, le=100_000)  # at most the coordinator's page size is returned


class JobRef(Payload):
    batch_id: Name
    job_id: int = Field(ge=0, le=MAX_SEED)


class SetPriority(Payload):
    batch_id: Name
    priority: int = Field(ge=0, le=100)


class Reply(Payload):
    ok: bool = True
    error: str = ""
    data: dict[str, Any] = {}


MESSAGES: dict[str, type[Payload]] = {
    "HELLO": Hello, "REQUEST": Request, "HEARTBEAT": Heartbeat, "PROGRESS": Progress, "DONE": Done, "BYE": Bye,
    "WELCOME": Welcome, "TASK": Task, "TASKS": Tasks, "NO_TASK": NoTask, "CANCEL": Cancel, "RESULTS": Results,
    "SUBMIT": Submit, "STATUS": BatchRef, "LIST": BatchRef, "CANCEL_BATCH": BatchRef, "RETRY": BatchRef,
    "SET_PRIORITY": SetPriority, "WORKERS": BatchRef, "JOBS": JobsPage, "ESTIMATE": Estimate, "REPLY": Reply,
    "LOGS": JobRef,
}
WORKER_TYPES = {"HELLO", "REQUEST", "HEARTBEAT", "PROGRESS", "DONE", "RESULTS", "BYE"}
CLIENT_TYPES = {"SUBMIT", "STATUS", "LIST", "CANCEL_BATCH", "RETRY", "SET_PRIORITY", "WORKERS", "JOBS", "ESTIMATE", "LOGS"}


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
        if bytes(version[:2]) == VERSION_PREFIX and len(version) <= 16:
            raise VersionMismatch(bytes(version))
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
