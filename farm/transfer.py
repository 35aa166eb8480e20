"""Moving files without a shared file system: inputs by content hash, outputs in chunks.

Inputs: a recipe and every file it names (assets, asset folders, base .blend, material libraries, HDRIs,
class map) form a bundle: relative path -> SHA-256. The client uploads the blobs the coordinator lacks;
a worker fetches the blobs it lacks into its own cache and lays the bundle out in a folder of its own.
No path of a bundle can leave the bundle's folder.

Outputs: a worker uploads the files of a finished attempt into the coordinator's staging folder for
that attempt, before it sends DONE; the coordinator commits them as usual.

All of it runs on a socket of its own (the coordinator's transfer ROUTER), chunk by chunk, with at most
``WINDOW`` chunks unacknowledged (credit-based flow control, as in the ZeroMQ guide's file transfer).
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

import zmq

from ..addon.core.dataset.durable import fsync_file
from ..addon.core.dataset.native import FRAME_SUFFIXES
from ..addon.core.files import new_temp_file

CHUNK = 256 * 1024
WINDOW = 8
VERSION = b"SFT1"


class TransferError(Exception):
    pass


class TransferTimeout(TransferError):
    """No answer in time (the coordinator restarting, say): the transfer may be resumed."""


class NoSpaceError(TransferError):
    """The coordinator's disk for the dataset is full (a batch condition, not the worker's fault)."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def safe_relative(rel: str) -> PurePosixPath:
    """A bundle path that stays inside its folder, or TransferError."""
    path = PurePosixPath(rel)
    if path.is_absolute() or ".." in path.parts or not path.parts or rel.startswith("~"):
        raise TransferError(f"path {rel!r} would leave the job's folder; bundles hold relative paths only")
    return path


# -- bundles ----------------------------------------------------------------------------------------------
def recipe_inputs(recipe, recipe_path: Path) -> list[Path]:
    """The recipe file and every file it can use, resolved: each member a file set can draw (a folder
    member, e.g. a texture set, with the files in it), a mesh with its companions of the same stem (an
    .obj's .mtl, a .gltf's .bin), the base .blend and the class map. Nothing a set cannot draw."""
    from ..addon.core.components import FILE_DOMAINS
    from ..addon.core.recipe import map_paths, resolve_path
    from ..addon.core.values import expand_entry

    base = recipe_path.parent
    entries: list[tuple[str, str]] = []
    map_paths(recipe.to_data(), lambda path, field: entries.append((path, field)) or path)
    files = [recipe_path.resolve()]
    for entry, field in entries:
        domain = FILE_DOMAINS.get(field)
        for member in expand_entry(entry, domain, base) if domain else [entry]:
            path = resolve_path(member, base).resolve()
            if path.is_dir():
                files += sorted(p for p in path.rglob("*") if p.is_file())
            else:
                files += sorted(p for p in path.parent.glob(f"{path.stem}.*") if p.is_file())
    return sorted(set(files))


def make_bundle(recipe, recipe_path: Path) -> tuple[Path, str, dict[str, str]]:
    """(root folder, recipe path in the bundle, {relative path: sha256}) for a recipe file."""
    files = recipe_inputs(recipe, Path(recipe_path))
    root = Path(os.path.commonpath([str(f.parent) for f in files]))
    manifest = {f.relative_to(root).as_posix(): sha256_file(f) for f in files}
    return root, Path(recipe_path).resolve().relative_to(root).as_posix(), manifest


def bundle_key(manifest: dict[str, str]) -> str:
    """A bundle's identity: the hash of its manifest."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:24]


class BlobStore:
    """Files by content hash: ``<dir>/<sha256>``; written under a temporary name, checked, renamed."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise TransferError(f"not a SHA-256 hex digest: {digest[:70]!r}")
        return self.dir / digest

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def add_file(self, source: Path, digest: str | None = None) -> str:
        digest = digest or sha256_file(source)
        if not self.has(digest):
            tmp = new_temp_file(self.dir, ".in-")
            with open(tmp, "wb") as out, open(source, "rb") as src:
                out.write(src.read())
            os.replace(tmp, self.path(digest))
        return digest

    def layout(self, manifest: dict[str, str], target: Path) -> Path:
        """Lay a bundle out under ``target`` (hard links to the blobs, copies where links fail)."""
        for rel, digest in manifest.items():
            dest = target / safe_relative(rel)
            if dest.exists():
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(self.path(digest), dest)
            except OSError:
                dest.write_bytes(self.path(digest).read_bytes())
        return target


# -- the wire -----------------------------------------------------------------------------------------------
def _send(sock, kind: str, header: dict, data: bytes = b"") -> None:
    sock.send_multipart([VERSION, kind.encode(), json.dumps(header).encode(), data])


def _recv(sock, timeout: float) -> tuple[str, dict, bytes]:
    if not sock.poll(int(timeout * 1000)):
        raise TransferTimeout(f"no answer from the coordinator's transfer socket within {timeout:g} s")
    frames = sock.recv_multipart()
    if len(frames) != 4 or frames[0] != VERSION:
        raise TransferError("malformed transfer message")
    header = json.loads(frames[2])
    if frames[1] == b"ERROR":
        raise (NoSpaceError if header.get("no_space") else TransferError)(header.get("error", "transfer refused"))
    return frames[1].decode(), header, frames[3]


def push_file(sock, kind: str, header: dict, path: Path, tick: Callable[[], None] = lambda: None,
              timeout: float = 60.0, start: int = 0) -> None:
    """Send a file in chunks (``kind`` PUT_BLOB or PUT_OUTPUT) with at most WINDOW chunks in flight, from the
    chunk that holds byte ``start`` on (the receiver already has what comes before)."""
    size = path.stat().st_size
    offsets = list(range(min(start, size) // CHUNK * CHUNK, max(size, 1), CHUNK))
    acked, sent = 0, 0
    with open(path, "rb") as handle:
        while acked < len(offsets):
            while sent < len(offsets) and sent - acked < WINDOW:
                handle.seek(offsets[sent])
                _send(sock, kind, {**header, "offset": offsets[sent], "size": size}, handle.read(CHUNK))
                sent += 1
            tick()
            _recv(sock, timeout)
            acked += 1


def upload_outputs(connect: Callable[[bool], object], staging: Path, attempt_id: str, files: list[str],
                   tick: Callable[[], None] = lambda: None, timeout: float = 6.0, patience: float = 300.0) -> None:
    """Upload an attempt's ``files`` (paths relative to ``staging``). When the coordinator falls silent (a restart)
    reconnect (``connect(True)`` gives a fresh socket), ask what arrived, and go on from there, for up to
    ``patience`` seconds of trying."""
    deadline = time.monotonic() + patience
    sock, have = connect(False), {}
    while True:
        try:
            for rel in files:
                size = (staging / rel).stat().st_size
                if rel in have and have[rel] >= size:
                    continue
                push_file(sock, "PUT_OUTPUT", {"attempt_id": attempt_id, "path": rel}, staging / rel, tick,
                          timeout, start=have.get(rel, 0))
                have[rel] = size
            return
        except TransferTimeout:
            if time.monotonic() > deadline:
                raise
            sock = connect(True)
            try:
                _send(sock, "OUTPUT_STATE", {"attempt_id": attempt_id})
                have = dict(_recv(sock, timeout)[1]["files"])
            except TransferTimeout:
                have = {}  # still down: start over once it answers


def pull(sock, kind: str, header: dict, target: Path, tick: Callable[[], None] = lambda: None,
         timeout: float = 60.0) -> None:
    """Fetch a file in chunks (GET_BLOB or GET_OUTPUT) into ``target``, at most WINDOW requests ahead;
    written under a temporary name and renamed when whole."""
    tmp = new_temp_file(target.parent, f".{target.name}.", ".part")
    try:
        with open(tmp, "wb") as out:
            _send(sock, kind, {**header, "offset": 0})
            _, answer, data = _recv(sock, timeout)
            size = answer["size"]
            out.write(data)
            pending: deque[int] = deque()
            ahead = CHUNK
            while ahead < size or pending:
                while ahead < size and len(pending) < WINDOW:
                    _send(sock, kind, {**header, "offset": ahead})
                    pending.append(ahead)
                    ahead += CHUNK
                tick()
                _, answer, data = _recv(sock, timeout)
                if answer["offset"] != pending.popleft():
                    raise TransferError("chunks arrived out of order")
                out.write(data)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def pull_blob(sock, digest: str, store: BlobStore, tick: Callable[[], None] = lambda: None,
              timeout: float = 60.0) -> None:
    """Fetch one blob into ``store``; verified by its hash."""
    target = store.path(digest)
    pull(sock, "GET_BLOB", {"hash": digest}, target, tick, timeout)
    if sha256_file(target) != digest:
        target.unlink()
        raise TransferError(f"blob {digest[:12]} arrived damaged")


FRAME_FOLDERS = FRAME_SUFFIXES  # a frame's files: <folder>/<stem><suffix>
FRAME_NAME = re.compile(r"^(\d{10})-(\d{4})-([^/]+)$")
ALLOWED = {"worker": {"GET_BLOB", "PUT_OUTPUT", "OUTPUT_STATE"},  # what each key role may ask
           "client": {"HAS_BLOBS", "PUT_BLOB", "LIST_OUTPUT", "GET_OUTPUT"}}


def frame_file(rel: str, job_id: int, frames: int) -> bool:
    """Whether ``rel`` names a file of a frame of job ``job_id`` (``images/0000000007-0002-cam.png``)."""
    parts = rel.split("/")
    return len(parts) == 2 and parts[0] in FRAME_FOLDERS and frame_name(parts[1], FRAME_FOLDERS[parts[0]], job_id,
                                                                         frames)


def frame_name(name: str, suffix: str, job_id: int, frames: int) -> bool:
    """Whether ``name`` is a file name of a frame of job ``job_id`` in the frame folder of files ending in
    ``suffix``."""
    match = FRAME_NAME.match(name[:-len(suffix)]) if name.endswith(suffix) else None
    return bool(match) and int(match[1]) == job_id and int(match[2]) < frames


@dataclass
class AttemptFiles:
    """Where a running attempt's files go, and which files those may be."""
    staging: Path
    job_id: int
    frames: int
    worker_id: str


class TransferServer:
    """The coordinator's side: answers HAS_BLOBS, GET_BLOB, PUT_BLOB, PUT_OUTPUT, OUTPUT_STATE, LIST_OUTPUT and
    GET_OUTPUT messages. ``attempt_of(attempt_id)`` gives a running attempt's AttemptFiles, or None;
    ``dataset_of(batch_id)`` a batch's dataset folder. Files are served and listed without following links;
    a worker may only put the files of the attempt it holds; with keys, workers and clients may each ask only
    what their role needs (workers cannot read datasets, clients cannot write frames)."""

    def __init__(self, blobs: BlobStore, attempt_of: Callable[[str], AttemptFiles | None],
                 dataset_of: Callable[[str], Path | None] = lambda batch_id: None, max_uploads: int = 64):
        self.blobs, self.attempt_of, self.dataset_of = blobs, attempt_of, dataset_of
        self.max_uploads = max_uploads
        self._uploads: dict[bytes, set[Path]] = {}  # sender -> blobs it has half uploaded

    def handle(self, frames: list[bytes], sender: bytes | None = None, roles: set[str] | None = None) -> list[bytes]:
        """Reply frames (without the routing identity) for one message's frames; never raises. ``sender``: the
        peer's routing identity (a worker's is its id); ``roles``: its keys' roles (None: no keys in use)."""
        try:
            if len(frames) != 4 or frames[0] != VERSION:
                raise TransferError("malformed transfer message")
            kind, header, data = frames[1].decode("ascii"), json.loads(frames[2]), frames[3]
            if not isinstance(header, dict):
                raise TransferError("malformed transfer header")
            if roles is not None and not any(kind in ALLOWED.get(role, ()) for role in roles):
                raise TransferError(f"{kind[:20]} is not allowed with {' or '.join(sorted(roles)) or 'unknown'} keys")
            reply_header, reply_data = self._answer(kind, header, data, sender)
            reply_kind = "CHUNK" if kind in ("GET_BLOB", "GET_OUTPUT") else "ACK"
        except Exception as err:  # refused or failed: the peer is told, the coordinator goes on
            reply_kind, reply_header, reply_data = "ERROR", {"error": str(err)[:500]}, b""
            if isinstance(err, OSError) and err.errno == errno.ENOSPC:
                reply_header["no_space"] = True
        return [VERSION, reply_kind.encode(), json.dumps(reply_header).encode(), reply_data]

    def _attempt(self, header: dict, sender: bytes | None) -> AttemptFiles:
        files = self.attempt_of(str(header["attempt_id"]))
        if files is None or (sender is not None and sender != files.worker_id.encode()):
            raise TransferError(f"attempt {str(header['attempt_id'])[:40]} is not running here for this worker: "
                                "its files are refused")
        return files

    def sweep(self, idle_seconds: float) -> int:
        """Delete half-uploaded blobs untouched for ``idle_seconds``; returns how many."""
        cutoff, removed = time.time() - idle_seconds, 0
        for path in [*self.blobs.dir.glob(".put-*"), *self.blobs.dir.glob(".in-*")]:
            try:
                if path.lstat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        for targets in self._uploads.values():
            targets.intersection_update(p for p in list(targets) if p.exists())
        return removed

    def _answer(self, kind: str, header: dict, data: bytes, sender: bytes | None) -> tuple[dict, bytes]:
        if kind == "HAS_BLOBS":
            return {"missing": [h for h in header["hashes"] if not self.blobs.has(h)]}, b""
        if kind == "GET_BLOB":
            path = self.blobs.path(header["hash"])
            if not path.is_file():
                raise TransferError(f"no blob {header['hash'][:12]} on the coordinator")
            with open(path, "rb") as handle:
                handle.seek(int(header["offset"]))
                chunk = handle.read(CHUNK)
            return {"hash": header["hash"], "offset": header["offset"], "size": path.stat().st_size}, chunk
        if kind == "PUT_BLOB":
            target = self.blobs.dir / f".put-{self.blobs.path(header['hash']).name}"
            mine = self._uploads.setdefault(sender or b"", set())
            if target not in mine and len(mine) >= self.max_uploads:
                raise TransferError(f"{len(mine)} uploads of this peer are unfinished; finish them first")
            mine.add(target)
            done = _write_chunk(target, header, data)
            if done:
                mine.discard(target)
                if sha256_file(target) != header["hash"]:
                    target.unlink()
                    raise TransferError(f"blob {header['hash'][:12]} arrived damaged")
                os.replace(target, self.blobs.path(header["hash"]))
            return {"offset": header["offset"]}, b""
        if kind == "PUT_OUTPUT":
            files = self._attempt(header, sender)
            rel = str(header["path"])
            if not frame_file(rel, files.job_id, files.frames):
                raise TransferError(f"{rel[:100]!r} is not a file of job {files.job_id}'s frames: refused")
            target = files.staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink():
                raise TransferError(f"{rel} is a link in the staging folder: refused")
            _write_chunk(target, header, data, sync=True)
            return {"offset": header["offset"]}, b""
        if kind == "OUTPUT_STATE":  # what arrived of an attempt's files (to resume an upload)
            files = self._attempt(header, sender)
            present = regular_files(files.staging)
            for rel, _ in present:  # a file whose last chunk came before a crash and its fsync: the worker skips
                fsync_file(files.staging / rel)  # what is listed whole, so it must be durable (resumes are rare)
            return {"files": [[rel, size] for rel, size in present]}, b""
        if kind in ("LIST_OUTPUT", "GET_OUTPUT"):
            root = self.dataset_of(str(header["batch_id"]))
            if root is None:
                raise TransferError(f"no batch {header['batch_id']!r}")
            if kind == "LIST_OUTPUT":
                return {"files": [[rel, size] for rel, size in regular_files(root) if not rel.startswith(".")]}, b""
            with open_regular(root, str(header["path"])) as handle:
                handle.seek(int(header["offset"]))
                chunk = handle.read(CHUNK)
                size = os.fstat(handle.fileno()).st_size
            return {"path": header["path"], "offset": header["offset"], "size": size}, chunk
        raise TransferError(f"unknown transfer message {kind[:20]!r}")


def open_regular(root: Path, rel: str):
    """Open ``root/rel`` for reading when it is a regular file reached through no link (else TransferError)."""
    path = Path(root) / safe_relative(rel)
    if os.path.realpath(path) != os.path.join(os.path.realpath(root), *PurePosixPath(rel).parts):
        raise TransferError(f"{rel[:100]!r} is reached through a link: not served")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as err:
        raise TransferError(f"{rel[:100]!r}: {err.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise TransferError(f"{rel[:100]!r} is not a regular file: not served")
    return os.fdopen(fd, "rb")


def regular_files(root: Path) -> list[tuple[str, int]]:
    """(relative path, size) of the regular files under ``root``; links are neither followed nor listed."""
    out = []
    for folder, _, names in os.walk(root, followlinks=False):
        for name in names:
            path = Path(folder) / name
            info = path.lstat()
            if stat.S_ISREG(info.st_mode):
                out.append((path.relative_to(root).as_posix(), info.st_size))
    return sorted(out)


def _write_chunk(target: Path, header: dict, data: bytes, sync: bool = False) -> bool:
    """Write a chunk at its offset; True when it was the file's last (then, with ``sync``, the file's bytes are
    fsynced: an attempt's uploaded file is durable before its DONE can arrive, as a worker's own writes are, and
    the coordinator's commit only renames it)."""
    offset, size = int(header["offset"]), int(header["size"])
    if offset < 0 or offset + len(data) > size or offset > (target.stat().st_size if target.exists() else 0):
        raise TransferError("chunk out of place")
    last = offset + len(data) >= size
    with open(target, "r+b" if target.exists() else "wb") as handle:
        handle.seek(offset)
        handle.write(data)
        if last and sync:
            handle.flush()
            os.fsync(handle.fileno())
    return last


def transfer_socket(context: zmq.Context, endpoint: str, keys: Path | None = None, role: str = "worker",
                    identity: bytes | None = None):
    """A DEALER to the coordinator's transfer socket; a worker's carries its id (``identity``): only the holder
    of an attempt may put its files."""
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if identity:
        sock.setsockopt(zmq.ROUTING_ID, identity)
    if keys:
        from .auth import secure_client

        secure_client(sock, keys, role)
    sock.connect(endpoint)
    return sock
