"""What reaches the disk, in order: every ``os.fsync`` (of a file or a folder) and ``os.replace`` made by this
process, from any thread, recorded after the real call, with the inode concerned (a file keeps it through its
renames, so its fsync under one name can be matched with its rename to another)."""
import os
import threading
from pathlib import Path
from typing import NamedTuple


class Event(NamedTuple):
    what: str  # "fsync" or "rename"
    path: Path  # the fsynced file or folder; a rename's target
    thread: str
    inode: int


def record(monkeypatch) -> list[Event]:
    """Start recording; returns the list of events."""
    seen = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(fd):
        fsync(fd)
        seen.append(Event("fsync", Path(os.readlink(f"/proc/self/fd/{fd}")), threading.current_thread().name,
                          os.fstat(fd).st_ino))

    def recording_replace(source, target):
        replace(source, target)
        seen.append(Event("rename", Path(target), threading.current_thread().name, os.lstat(target).st_ino))

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    return seen


def check_durable_commit(events, root: Path) -> dict[Path, int]:
    """The order a durable commit into the dataset ``root`` needs: each file's bytes fsynced (under any name:
    a temporary one in its folder, or its name in a staging folder) before it gets its name in the dataset; every
    data folder fsynced after its last rename and before the first annotation (the frames' commit marker) lands;
    the annotations' folder fsynced after the last of them. Returns how many times each folder was fsynced."""
    renames = [(i, e.path) for i, e in enumerate(events) if e.what == "rename" and e.path.parent.parent == root]
    fsyncs = [(i, e.path) for i, e in enumerate(events) if e.what == "fsync"]
    markers = [(i, p) for i, p in renames if p.parent.name == "annotations"]
    data = [(i, p) for i, p in renames if p.parent.name != "annotations"]
    assert markers and data, "nothing was committed"
    for i, path in renames:
        assert any(j < i and e.what == "fsync" and e.inode == events[i].inode for j, e in enumerate(events)), path
    folders = [(j, f) for j, f in fsyncs if f.is_dir()]
    first_marker, last_marker = min(i for i, _ in markers), max(i for i, _ in markers)
    for i, path in data:
        assert any(i < j < first_marker and f == path.parent for j, f in folders), f"{path.parent} never fsynced"
    assert any(j > last_marker and f == root / "annotations" for j, f in folders), "annotations never fsynced"
    counts: dict[Path, int] = {}
    for _, folder in folders:
        counts[folder] = counts.get(folder, 0) + 1
    return counts
