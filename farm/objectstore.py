"""Datasets in S3-compatible object storage, with the farm's commit rule: nothing partial, nothing twice.

A worker uploads an attempt's frames under ``<dataset>/.staging/<attempt>/`` with a SHA-256 checksum on every
object (the store refuses a body that does not match) and reports a manifest {path: sha256, md5, size}. The
coordinator accepts the result only when the staged objects are exactly the manifest's (names and sizes from one
listing, content from the ETag the store computed, or the checksum it verified), then copies them into the dataset prefix, each frame's annotation
last (a frame counts once its annotation exists), and deletes the staging objects. A re-run of a job writes
the same keys with the same bytes, so an at-least-once farm never duplicates a frame.

boto3 is the client: the reference implementation of the S3 API, whose per-object SHA-256 checksums,
server-side copy and endpoint override (``AWS_ENDPOINT_URL`` for MinIO, Ceph, R2, ...) are what this needs;
credentials come from boto3's usual chain (environment, config files, instance roles).
"""
from __future__ import annotations

import base64
import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..addon.core.dataset.identity import JOB_LIST_FILE
from ..addon.core.dataset.native import FOLDERS

STAGING = ".staging"
URL = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>[^\s]*?))?/?$")
FRAME = re.compile(r"^(?P<job>\d{10})-\d{4}-[A-Za-z0-9_.-]+$")
THREADS = 16


class StorageError(Exception):
    """The object store refused or lacks something; the message says what and where."""


def is_url(text: str) -> bool:
    return str(text).startswith("s3://")


@dataclass(frozen=True)
class Location:
    """A dataset in a bucket: ``s3://bucket/prefix``."""
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> "Location":
        match = URL.match(str(url))
        if not match:
            raise StorageError(f"out {url!r} is not an S3 location: write s3://BUCKET/PREFIX (a bucket name of "
                               "3-63 lower-case letters, digits, dots and dashes)")
        prefix = (match["prefix"] or "").removesuffix("/")
        if prefix and any(part in ("", ".", "..", STAGING) for part in prefix.split("/")):
            raise StorageError(f"out {url!r}: the prefix may not hold empty, '.', '..' or {STAGING!r} parts")
        return cls(match["bucket"], prefix)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def staging(self, attempt_id: str) -> "Location":
        return Location(self.bucket, self.key(f"{STAGING}/{attempt_id}"))


def client(endpoint_url: str | None = None):
    """A boto3 S3 client (thread-safe); the endpoint defaults to boto3's own ($AWS_ENDPOINT_URL or AWS)."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint_url or None,
                        config=Config(retries={"max_attempts": 5, "mode": "standard"},
                                      max_pool_connections=THREADS * 2))


def _errors(action: str):
    from botocore.exceptions import BotoCoreError, ClientError

    class Wrap:
        def __enter__(self):
            return self

        def __exit__(self, kind, err, tb):
            if isinstance(err, (ClientError, BotoCoreError)):
                raise StorageError(f"{action}: {err}") from None
            return False

    return Wrap()


def frame_rel(rel: str, job_id: int | None = None) -> tuple[str, str]:
    """(kind, stem) of a dataset-relative frame file; refuses anything else (and other jobs' frames)."""
    path = PurePosixPath(rel)
    if path.is_absolute() or len(path.parts) != 2 or ".." in path.parts:
        raise StorageError(f"{rel!r} is not a frame file of the dataset layout")
    for kind, (folder, suffix) in FOLDERS.items():
        if path.parts[0] == folder and path.name.endswith(suffix):
            stem = path.name[:-len(suffix)]
            match = FRAME.match(stem)
            if match and (job_id is None or int(match["job"]) == job_id):
                return kind, stem
    raise StorageError(f"{rel!r} is not a frame file" + (f" of job {job_id}" if job_id is not None else ""))


# -- the worker's side --------------------------------------------------------------------------------
def upload_attempt(s3, dataset: Location, attempt_id: str, folder: Path, tick=lambda: None) -> dict[str, dict]:
    """Upload the frame files an attempt wrote into ``folder`` (a dataset layout) to its staging prefix.
    Returns the manifest {relative path: {"sha256": hex, "md5": hex, "size": bytes}}."""
    staging = dataset.staging(attempt_id)
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and not p.name.startswith("."))
    files = [p for p in files if p.relative_to(folder).parts[0] in {f for f, _ in FOLDERS.values()}]

    def put(path: Path) -> tuple[str, dict]:
        rel = path.relative_to(folder).as_posix()
        body = path.read_bytes()
        digest = hashlib.sha256(body).digest()
        with _errors(f"uploading {rel} to {staging.url}"):
            s3.put_object(Bucket=staging.bucket, Key=staging.key(rel), Body=body, ChecksumAlgorithm="SHA256",
                          ChecksumSHA256=base64.b64encode(digest).decode())
        return rel, {"sha256": digest.hex(), "md5": hashlib.md5(body).hexdigest(), "size": len(body)}

    manifest = {}
    with ThreadPoolExecutor(THREADS) as pool:
        for rel, entry in pool.map(put, files):
            manifest[rel] = entry
            tick()
    return manifest


# -- the coordinator's side ---------------------------------------------------------------------------
def _staged(s3, staging: Location) -> dict[str, dict]:
    """{relative path: {"size", "etag"}} of every object under a staging prefix (one listing per 1,000)."""
    found, token = {}, None
    with _errors(f"listing {staging.url}"):
        while True:
            page = s3.list_objects_v2(Bucket=staging.bucket, Prefix=staging.key(""),
                                      **({"ContinuationToken": token} if token else {}))
            for obj in page.get("Contents", ()):
                found[obj["Key"][len(staging.key("")):]] = {"size": obj["Size"], "etag": obj["ETag"].strip('"')}
            if not page.get("IsTruncated"):
                break
            token = page["NextContinuationToken"]
    return found


def _sha256_of(s3, staging: Location, rel: str) -> str:
    with _errors(f"reading {staging.url}/{rel}"):
        head = s3.head_object(Bucket=staging.bucket, Key=staging.key(rel), ChecksumMode="ENABLED")
    value = head.get("ChecksumSHA256")
    return base64.b64decode(value).hex() if value else ""


def manifest_frames(manifest: dict[str, dict]) -> set[str]:
    """The stems of the frames an attempt's manifest names with their annotation (the commit marker)."""
    return {stem for kind, stem in map(frame_rel, manifest) if kind == "annotation"}


def commit_attempt(s3, dataset: Location, attempt_id: str, job_id: int, manifest: dict[str, dict]) -> list[str]:
    """Check an attempt's staged objects against its manifest, copy them into the dataset (annotations last)
    and delete the staging objects. Returns the frame stems committed; raises StorageError (and commits
    nothing) when anything is missing, extra, of another job, or differs."""
    staging = dataset.staging(attempt_id)
    kinds = {rel: frame_rel(rel, job_id) for rel in manifest}
    staged = _staged(s3, staging)
    if set(staged) != set(manifest):
        missing, extra = sorted(set(manifest) - set(staged)), sorted(set(staged) - set(manifest))
        raise StorageError(f"attempt {attempt_id}: staged objects differ from its manifest (missing {missing[:5]}, "
                           f"not in the manifest {extra[:5]})")
    for rel, entry in manifest.items():
        # the store's ETag of a single-part upload is the MD5 of the bytes it received; where it is not (an
        # encrypted bucket), the SHA-256 checksum the store verified on upload is read back instead
        same = staged[rel]["size"] == entry.get("size") and (
            staged[rel]["etag"] == entry.get("md5") or _sha256_of(s3, staging, rel) == entry.get("sha256"))
        if not same:
            raise StorageError(f"attempt {attempt_id}: {rel} in the store does not match the manifest "
                               f"(size {staged[rel]['size']}, ETag {staged[rel]['etag'][:12]})")

    def copy(rel: str) -> None:
        with _errors(f"committing {rel} into {dataset.url}"):
            s3.copy_object(Bucket=dataset.bucket, Key=dataset.key(rel), ChecksumAlgorithm="SHA256",
                           CopySource={"Bucket": staging.bucket, "Key": staging.key(rel)})

    annotations = [rel for rel in manifest if kinds[rel][0] == "annotation"]
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(copy, [rel for rel in manifest if rel not in annotations]))
        list(pool.map(copy, annotations))  # a frame exists once its annotation does
    discard_prefix(s3, staging)
    return sorted({kinds[rel][1] for rel in annotations})


def discard_prefix(s3, location: Location) -> int:
    """Delete every object under a prefix (a failed or stale attempt's staging); returns how many."""
    keys, token = [], None
    with _errors(f"discarding {location.url}"):
        while True:
            page = s3.list_objects_v2(Bucket=location.bucket, Prefix=location.key(""),
                                      **({"ContinuationToken": token} if token else {}))
            keys += [obj["Key"] for obj in page.get("Contents", ())]
            if not page.get("IsTruncated"):
                break
            token = page["NextContinuationToken"]
        for i in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=location.bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]],
                                                              "Quiet": True})
    return len(keys)


def put_file(s3, dataset: Location, rel: str, path: Path) -> None:
    """Upload one of the dataset's own files (dataset.yaml, recipe.yaml, jobs.jsonl) from the coordinator."""
    body = Path(path).read_bytes()
    with _errors(f"writing {rel} to {dataset.url}"):
        s3.put_object(Bucket=dataset.bucket, Key=dataset.key(rel), Body=body, ChecksumAlgorithm="SHA256")


def get_file(s3, dataset: Location, rel: str, path: Path) -> bool:
    """Download one object to ``path`` (written under a temporary name); False when it does not exist."""
    from botocore.exceptions import ClientError

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        s3.download_file(dataset.bucket, dataset.key(rel), str(tmp))
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
            return False
        raise StorageError(f"reading {dataset.url}/{rel}: {err}") from None
    tmp.replace(path)
    return True


# -- readers: download and the batch API ----------------------------------------------------------------
def list_dataset(s3, dataset: Location) -> list[tuple[str, int]]:
    """(relative path, size) of every committed object of a dataset (never the staging area)."""
    out, token = [], None
    with _errors(f"listing {dataset.url}"):
        while True:
            page = s3.list_objects_v2(Bucket=dataset.bucket, Prefix=dataset.key(""),
                                      **({"ContinuationToken": token} if token else {}))
            for obj in page.get("Contents", ()):
                rel = obj["Key"][len(dataset.key("")):]
                if not rel.startswith(f"{STAGING}/"):
                    out.append((rel, obj["Size"]))
            if not page.get("IsTruncated"):
                break
            token = page["NextContinuationToken"]
    return sorted(out)


def download_dataset(s3, dataset: Location, target: Path, progress=None) -> tuple[int, int]:
    """Copy a dataset from the bucket into ``target``; files already there with the same size are skipped
    (an interrupted download resumes). Returns (fetched, skipped)."""
    from .transfer import safe_relative

    files = list_dataset(s3, dataset)
    todo = []
    for rel, size in files:
        local = Path(target) / safe_relative(rel)
        if not (local.is_file() and local.stat().st_size == size):
            todo.append((rel, local))
    done = [len(files) - len(todo)]

    def fetch(item):
        rel, local = item
        if not get_file(s3, dataset, rel, local):
            raise StorageError(f"{dataset.url}/{rel} vanished during the download")
        return rel

    with ThreadPoolExecutor(THREADS) as pool:
        for _ in pool.map(fetch, todo):
            done[0] += 1
            if progress:
                progress(done[0], len(files))
    return len(todo), len(files) - len(todo)


class Buckets:
    """The coordinator's side of datasets in buckets: a local mirror of each dataset's own files (dataset.yaml,
    recipe.yaml, jobs.jsonl, job_list.jsonl: the native writer keeps them there as for a folder), attempts committed
    from their staging prefix, and the dataset's files published to the bucket when its batch finishes."""
    OWN_FILES = ("dataset.yaml", "recipe.yaml", "jobs.jsonl", JOB_LIST_FILE)

    def __init__(self, mirrors: Path, db=None):
        self.mirrors = Path(mirrors)
        self._s3 = None
        self.db = db  # the coordinator's SQLite: which batch writes to which bucket
        self._urls: dict[str, str] = {}
        if db is not None:
            db.execute("CREATE TABLE IF NOT EXISTS storage (batch_id TEXT PRIMARY KEY, url TEXT)")
            self._urls = dict(db.execute("SELECT batch_id, url FROM storage"))

    def remember(self, batch_id: str, url: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO storage VALUES (?,?)", (batch_id, url))
        self._urls[batch_id] = url

    def url_of(self, batch_id: str) -> str:
        """The bucket location a batch writes to ('' for a dataset folder)."""
        return self._urls.get(batch_id, "")

    @property
    def s3(self):
        if self._s3 is None:
            self._s3 = client()
        return self._s3

    def mirror(self, url: str) -> Path:
        where = Location.parse(url)
        return self.mirrors / where.bucket / (where.prefix or "_root")

    def prepare(self, url: str) -> Path:
        """Before a submission into ``url``: the mirror holds the bucket's copy of the dataset's own files (so
        a resumed dataset keeps its jobs and a different one is refused, as for a folder)."""
        where, mirror = Location.parse(url), self.mirror(url)
        with _errors(f"out {url}: the bucket {where.bucket!r} cannot be reached (create it, or check the endpoint "
                     "and credentials)"):
            self.s3.head_bucket(Bucket=where.bucket)
        for name in self.OWN_FILES:
            get_file(self.s3, where, name, mirror / name)
        return mirror

    def commit(self, url: str, attempt_id: str, job_id: int, manifest: dict[str, dict]) -> list[str]:
        return commit_attempt(self.s3, Location.parse(url), attempt_id, job_id, manifest)

    def discard(self, url: str, attempt_id: str) -> None:
        try:
            discard_prefix(self.s3, Location.parse(url).staging(attempt_id))
        except StorageError as err:  # the store is away: the prefix is swept when the batch finishes
            import logging

            logging.getLogger(__name__).warning("%s", err)

    def publish(self, url: str) -> None:
        """The dataset's own files into the bucket, and what is left under its staging prefix deleted."""
        where, mirror = Location.parse(url), self.mirror(url)
        for name in self.OWN_FILES:
            if (mirror / name).is_file():
                put_file(self.s3, where, name, mirror / name)
        discard_prefix(self.s3, Location(where.bucket, where.key(STAGING)))
