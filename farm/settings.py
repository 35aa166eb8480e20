"""The coordinator's settings: liveness, the failure policy, where datasets may go, and the limits that keep
one client, worker or batch from exhausting it. Every limit is named here with its default; the
``synthfarm coordinator`` options set the ones an operator is expected to change.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Settings:
    # liveness
    heartbeat: float = 1.0  # seconds between heartbeats
    liveness: int = 3  # heartbeats a worker may miss before it reconnects
    lost_after: float = 60.0  # seconds of silence after which a worker's attempt is requeued
    hang_after: float = 600.0  # seconds a heartbeating worker may go without progress (a recipe may raise it)
    # failure policy
    max_attempts: int = 3  # failed attempts after which a job fails, whoever ran them
    distinct_workers: int = 3  # ... made by this many different workers, when that many are connected
    block_after: int = 3  # a worker that failed this many jobs of a batch leaves it to the others
    min_free_bytes: int = 64 * 1024 * 1024  # below this on a dataset's disk its batch pauses (out of space)
    # where files may be
    out_root: Path | None = None  # datasets live under here (default: <data>/datasets); relative outs too
    any_out: bool = False  # True: a dataset may be any folder this process can write (the embedded farm)
    shared_roots: tuple[Path, ...] = ()  # recipes read from a shared file system must lie under one of these
    # limits
    max_jobs_per_batch: int = 1_000_000
    max_yaml_nodes: int = 200_000  # a recipe's YAML after alias expansion
    max_uploads_per_sender: int = 64  # files a transfer peer may have half-uploaded at once
    upload_idle_seconds: float = 3600.0  # a half-uploaded file untouched this long is deleted
    forget_workers_after: float = 24 * 3600.0  # a lost or gone worker's row is deleted after this
    page_size: int = 1000  # jobs per JOBS reply (and the most a client may ask for)

    def __post_init__(self) -> None:
        self.shared_roots = tuple(Path(r).resolve() for r in self.shared_roots)
        if self.out_root is not None:
            self.out_root = Path(self.out_root).resolve()
