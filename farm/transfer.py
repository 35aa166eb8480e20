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

import hashlib
import json
import os
import tempfile
from collections import deque
from pathlib import Path, PurePosixPath
from typing import Callable

import zmq

CHUNK = 256 * 1024
WINDOW = 8
VERSION = b"SFT1"


class TransferError(Exception):
    pass


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
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".in-")
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
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
        raise TransferError(f"no answer from the coordinator's transfer socket within {timeout:g} s")
    frames = sock.recv_multipart()
    if len(frames) != 4 or frames[0] != VERSION:
        raise TransferError("malformed transfer message")
    header = json.loads(frames[2])
    if frames[1] == b"ERROR":
        raise TransferError(header.get("error", "transfer refused"))
    return frames[1].decode(), header, frames[3]


def push_file(sock, kind: str, header: dict, path: Path, tick: Callable[[], None] = lambda: None,
              timeout: float = 60.0) -> None:
    """Send a file in chunks (``kind`` PUT_BLOB or PUT_OUTPUT) with at most WINDOW chunks in flight."""
    size = path.stat().st_size
    offsets = list(range(0, max(size, 1), CHUNK))
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


def pull(sock, kind: str, header: dict, target: Path, tick: Callable[[], None] = lambda: None,
         timeout: float = 60.0) -> None:
    """Fetch a file in chunks (GET_BLOB or GET_OUTPUT) into ``target``, at most WINDOW requests ahead;
    written under a temporary name and renamed when whole."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
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


class TransferServer:
    """The coordinator's side: answers GET_BLOB, HAS_BLOBS, PUT_BLOB and PUT_OUTPUT messages.
    ``staging_for(attempt_id)`` returns the staging folder of a running attempt, or None."""

    def __init__(self, blobs: BlobStore, staging_for: Callable[[str], Path | None],
                 dataset_of: Callable[[str], Path | None] = lambda batch_id: None):
        self.blobs, self.staging_for, self.dataset_of = blobs, staging_for, dataset_of

    def handle(self, frames: list[bytes]) -> list[bytes]:
        """Reply frames (without the routing identity) for one message's frames; never raises."""
        try:
            if len(frames) != 4 or frames[0] != VERSION:
                raise TransferError("malformed transfer message")
            kind, header, data = frames[1].decode("ascii"), json.loads(frames[2]), frames[3]
            reply_header, reply_data = self._answer(kind, header, data)
            reply_kind = "CHUNK" if kind in ("GET_BLOB", "GET_OUTPUT") else "ACK"
        except (TransferError, ValueError, KeyError, TypeError, OSError) as err:
            reply_kind, reply_header, reply_data = "ERROR", {"error": str(err)[:500]}, b""
        return [VERSION, reply_kind.encode(), json.dumps(reply_header).encode(), reply_data]

    def _answer(self, kind: str, header: dict, data: bytes) -> tuple[dict, bytes]:
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
            done = _write_chunk(target, header, data)
            if done:
                if sha256_file(target) != header["hash"]:
                    target.unlink()
                    raise TransferError(f"blob {header['hash'][:12]} arrived damaged")
                os.replace(target, self.blobs.path(header["hash"]))
            return {"offset": header["offset"]}, b""
        if kind == "PUT_OUTPUT":
            staging = self.staging_for(str(header["attempt_id"]))
            if staging is None:
                raise TransferError(f"attempt {header['attempt_id']} is not running here: its files are refused")
            target = staging / safe_relative(str(header["path"]))
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_chunk(target, header, data)
            return {"offset": header["offset"]}, b""
        if kind in ("LIST_OUTPUT", "GET_OUTPUT"):
            root = self.dataset_of(str(header["batch_id"]))
            if root is None:
                raise TransferError(f"no batch {header['batch_id']!r}")
            if kind == "LIST_OUTPUT":
                files = sorted((f.relative_to(root).as_posix(), f.stat().st_size) for f in root.rglob("*")
                               if f.is_file() and not f.relative_to(root).parts[0].startswith("."))
                return {"files": files}, b""
            path = root / safe_relative(str(header["path"]))
            with open(path, "rb") as handle:
                handle.seek(int(header["offset"]))
                chunk = handle.read(CHUNK)
            return {"path": header["path"], "offset": header["offset"], "size": path.stat().st_size}, chunk
        raise TransferError(f"unknown transfer message {kind[:20]!r}")


def _write_chunk(target: Path, header: dict, data: bytes) -> bool:
    """Write a chunk at its offset; True when it was the file's last."""
    offset, size = int(header["offset"]), int(header["size"])
    if offset < 0 or offset + len(data) > size or offset > (target.stat().st_size if target.exists() else 0):
        raise TransferError("chunk out of place")
    with open(target, "r+b" if target.exists() else "wb") as handle:
        handle.seek(offset)
        handle.write(data)
    return offset + len(data) >= size


def transfer_socket(context: zmq.Context, endpoint: str, keys: Path | None = None, role: str = "worker"):
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if keys:
        from .auth import secure_client

        secure_client(sock, keys, role)
    sock.connect(endpoint)
    return sock
