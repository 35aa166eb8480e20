"""Files made durable together, with as few fsyncs as that takes (standard library only).

A file is durable once its bytes are (fsync of the file) and its name is (fsync of its folder, after the
rename). A :class:`DurableGroup` writes every file under a temporary name in its final folder and fsyncs it
(all files at once, on a few encoder threads: the encoders release the GIL and concurrent fsyncs share the
file system's journal commits), renames them all into place and fsyncs each folder once; then it does the same
for its commit markers (a frame's annotation: a frame counts as done when its annotation exists), so that no
marker can outlive a file it stands for. A crash at any point leaves temporary files (removed on the next open) and no partial file under a
real name.

A file whose bytes are durable already (``add_file(..., synced=True)``: an attempt's staged file, fsynced by the
worker's writer or by the transfer server when its upload ended) is renamed into place directly: a rename of a
synced file followed by an fsync of its new folder is durable (ext4 and XFS journal the rename with the inode;
the folder's fsync commits it), so its bytes are not fsynced again.
"""
from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Callable

from ..files import new_temp_file
from ..threads import threads_beside_bpy

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


ENCODERS = 4  # files of a group encoded and fsynced at once (encoders and fsync release the GIL)
_pool: ThreadPoolExecutor | None = None


def _encoders() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(ENCODERS, thread_name_prefix="synthfarm-encode")
    return _pool


def _all(calls: list[Callable[[], None]]) -> None:
    """Run ``calls`` on the encoder threads; wait for every one, then raise the first error. One after another on
    this thread where no thread may run beside bpy (core/threads.py)."""
    if not threads_beside_bpy():
        for call in calls:
            call()
        return
    futures = [_encoders().submit(call) for call in calls]
    wait(futures)
    for future in futures:
        future.result()


class DurableGroup:
    """``add`` files (a function writes each to the temporary path it is given), then ``commit``: every file
    written and fsynced (at once, on encoder threads), the files renamed into place and their folders fsynced,
    then the same for the markers. ``discard`` removes what was not committed. As a context manager: commit on
    success, discard on error."""

    def __init__(self):
        self._files: list[tuple[Path, Callable[[Path], None], bool]] = []
        self._written: list[tuple[Path, Path, bool]] = []  # (temporary, final, marker)
        self._moves: dict[tuple[str, bool], list[tuple[str, str]]] = {}  # (folder, marker) -> [(synced source,
        #                                                                    final)]: renamed in as they are
        self._new_folders: set[Path] = set()  # made by this group: their names are synced with the files'
        self.fsyncs = 0

    def add(self, path: Path, write: Callable[[Path], None], marker: bool = False) -> None:
        self._files.append((Path(path), write, marker))

    def add_bytes(self, path: Path, data: bytes, marker: bool = False) -> None:
        self.add(path, lambda tmp: tmp.write_bytes(data), marker)

    def add_file(self, path: Path, source: Path, marker: bool = False, synced: bool = False) -> None:
        """A file written already (a render's image, an attempt's staged file): moved in with the group. Its bytes
        are fsynced before it gets its name, unless ``synced`` says its writer did (then it is renamed in as it is,
        from a folder of the same file system; the source is never removed by :meth:`discard`)."""
        if synced:
            path = os.fspath(path)
            self.move_in(os.path.dirname(path), [(os.fspath(source), path)], marker)
        else:
            self.add(path, lambda tmp: shutil.move(source, tmp), marker)

    def move_in(self, folder: str, moves: list[tuple[str, str]], marker: bool = False) -> None:
        """Synced files renamed into ``folder`` with the group: [(source, final path in ``folder``)], as
        ``add_file(..., synced=True)`` (a caller that knows the folder of many files says it once)."""
        if moves:
            self._moves.setdefault((folder, marker), []).extend(moves)

    def remove(self, paths: list) -> None:
        """Remove files now, durably (before anything of this group lands): a marker that stood for old files. A
        link in a path's place is removed too, never followed."""
        gone = [path for path in map(os.fspath, paths) if os.path.lexists(path)]
        for path in gone:
            os.unlink(path)
        self._sync_folders(gone)

    def _write(self, path: Path, write: Callable[[Path], None], marker: bool) -> None:
        tmp = new_temp_file(path.parent, f".{path.name}.", TMP_MARK + path.suffix)
        self._written.append((tmp, path, marker))  # list.append is atomic: the encoder threads share the list
        write(tmp)
        fsync_file(tmp)

    def _make_folders(self) -> None:
        """The folders the files go to; a new one's name is made durable in its parent with the first renames."""
        moved_to = {folder for folder, _ in self._moves}
        for folder in sorted({path.parent for path, _, _ in self._files} | set(map(Path, moved_to))):
            while not folder.is_dir():
                self._new_folders.add(folder)
                folder = folder.parent
        for folder in sorted(self._new_folders):
            folder.mkdir(exist_ok=True)

    def commit(self) -> None:
        self._make_folders()
        _all([lambda f=f: self._write(*f) for f in self._files])
        self.fsyncs += len(self._files)
        self._files = []
        for marker in (False, True):
            landed = []
            for tmp, path, is_marker in self._written:
                if is_marker == marker:
                    os.replace(tmp, path)
                    landed.append(path)
            folders = set()
            for (folder, is_marker), moves in self._moves.items():
                if is_marker == marker:
                    for source, path in moves:
                        os.replace(source, path)
                    folders.add(folder)
            self._sync_folders(landed, folders)
        self._written, self._moves = [], {}

    def _sync_folders(self, paths: list, folders: set[str] = frozenset()) -> None:
        """fsync the folders of ``paths``, ``folders`` and the parents of the folders this group made."""
        new, self._new_folders = self._new_folders, set()
        folders = sorted({os.path.dirname(path) for path in map(os.fspath, paths)} | set(folders)
                         | {str(f.parent) for f in new})
        _all([lambda folder=folder: fsync_folder(folder) for folder in folders])
        self.fsyncs += len(folders)

    def discard(self) -> None:
        for tmp, _, _ in self._written:
            tmp.unlink(missing_ok=True)
        self._files, self._written, self._moves = [], [], {}

    def __enter__(self) -> "DurableGroup":
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            try:
                self.commit()
            except BaseException:
                self.discard()
                raise
        else:
            self.discard()
