"""Files made durable together, with as few fsyncs as that takes (standard library only).

A file is durable once its bytes are (fsync of the file) and its name is (fsync of its folder, after the
rename). A :class:`DurableGroup` writes every file under a temporary name in its final folder and fsyncs it,
renames them all into place and fsyncs each folder once; then it does the same for its commit markers (a
frame's annotation: a frame counts as done when its annotation exists), so that no marker can outlive a file it
stands for. A crash at any point leaves temporary files (removed on the next open) and no partial file under a
real name.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from ..files import new_temp_file

TMP_MARK = ".tmp"


def fsync_folder(folder: Path) -> None:
    """Make the names in ``folder`` durable (a no-op where folders cannot be opened, as on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


class DurableGroup:
    """``add`` files (a function writes each to the temporary path it is given), then ``commit``: files, then
    markers, each group renamed into place and its folders fsynced once. ``discard`` removes what was not
    committed. As a context manager: commit on success, discard on error."""

    def __init__(self):
        self._files: list[tuple[Path, Path]] = []  # (temporary, final)
        self._markers: list[tuple[Path, Path]] = []
        self.fsyncs = 0

    def add(self, path: Path, write: Callable[[Path], None], marker: bool = False) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = new_temp_file(path.parent, f".{path.name}.", TMP_MARK + path.suffix)
        (self._markers if marker else self._files).append((tmp, path))
        write(tmp)
        fsync_file(tmp)
        self.fsyncs += 1

    def add_bytes(self, path: Path, data: bytes, marker: bool = False) -> None:
        self.add(path, lambda tmp: tmp.write_bytes(data), marker)

    def remove(self, paths: list[Path]) -> None:
        """Remove files now, durably (before anything of this group lands): a marker that stood for old files."""
        gone = [path for path in paths if path.exists()]
        for path in gone:
            path.unlink()
        self._sync_folders(gone)

    def commit(self) -> None:
        for group in (self._files, self._markers):
            for tmp, path in group:
                os.replace(tmp, path)
            self._sync_folders([path for _, path in group])
            group.clear()

    def _sync_folders(self, paths: list[Path]) -> None:
        for folder in sorted({path.parent for path in paths}):
            fsync_folder(folder)
            self.fsyncs += 1

    def discard(self) -> None:
        for tmp, _ in self._files + self._markers:
            tmp.unlink(missing_ok=True)
        self._files, self._markers = [], []

    def __enter__(self) -> "DurableGroup":
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()
