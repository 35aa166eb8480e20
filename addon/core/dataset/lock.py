"""One writer per dataset folder: a lock file held while a render, a farm or an export writes into it.

The lock is an OS file lock (``filelock``: fcntl/flock on POSIX, msvcrt on Windows), so the operating
system releases it when the holding process ends, however it ends: a crashed or killed render never
leaves a folder locked. Within one process the lock is re-entrant (the embedded farm's coordinator, the
render that started it and the exports it runs share it).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from .native import LOCK_FILE, DatasetError


class DatasetBusyError(DatasetError):
    """Another process is writing into the dataset folder."""


def dataset_lock(root: Path) -> FileLock:
    """The (process-wide, re-entrant) lock of a dataset folder; the folder is created if needed."""
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return FileLock(root / LOCK_FILE, is_singleton=True, thread_local=False)


@contextlib.contextmanager
def writing(root: Path, what: str = "write into it") -> Iterator[FileLock]:
    """Hold the folder's lock, or raise DatasetBusyError at once if another process holds it."""
    lock = acquire(root, what)
    try:
        yield lock
    finally:
        lock.release()


def acquire(root: Path, what: str = "write into it") -> FileLock:
    lock = dataset_lock(root)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise DatasetBusyError(
            f"{root} is in use: another synthfarm process (a render, a farm or a convert) is writing into it, "
            f"so this one cannot {what}. Wait until it ends, or choose another folder. (A process that crashed "
            f"holds no lock.)") from None
    return lock
