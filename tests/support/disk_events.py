"""What reaches the disk, in order: every ``os.fsync`` (of a file or a folder) and ``os.replace`` made by this
process, from any thread, recorded after the real call."""
import os
import threading
from pathlib import Path


def record(monkeypatch) -> list[tuple[str, Path, str]]:
    """Start recording; returns the list of (what, path, thread name) events ("fsync" or "rename")."""
    seen = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(fd):
        fsync(fd)
        seen.append(("fsync", Path(os.readlink(f"/proc/self/fd/{fd}")), threading.current_thread().name))

    def recording_replace(source, target):
        replace(source, target)
        seen.append(("rename", Path(target), threading.current_thread().name))

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    return seen


def check_durable_commit(events, root: Path) -> dict[Path, int]:
    """The order a durable commit into the dataset ``root`` needs: each file's bytes fsynced (under its
    temporary name in the same folder) before it gets its name; every data folder fsynced after its last rename
    and before the first annotation (the frames' commit marker) lands; the annotations' folder fsynced after the
    last of them. Returns how many times each folder was fsynced."""
    renames = [(i, path) for i, (what, path, _) in enumerate(events)
               if what == "rename" and path.parent.parent == root]
    fsyncs = [(i, path) for i, (what, path, _) in enumerate(events) if what == "fsync"]
    markers = [(i, p) for i, p in renames if p.parent.name == "annotations"]
    data = [(i, p) for i, p in renames if p.parent.name != "annotations"]
    assert markers and data, "nothing was committed"
    for i, path in renames:
        assert any(j < i and f.parent == path.parent and f.name.startswith(f".{path.name}.") for j, f in fsyncs), path
    folders = [(j, f) for j, f in fsyncs if f.is_dir()]
    first_marker, last_marker = min(i for i, _ in markers), max(i for i, _ in markers)
    for i, path in data:
        assert any(i < j < first_marker and f == path.parent for j, f in folders), f"{path.parent} never fsynced"
    assert any(j > last_marker and f == root / "annotations" for j, f in folders), "annotations never fsynced"
    counts: dict[Path, int] = {}
    for _, folder in folders:
        counts[folder] = counts.get(folder, 0) + 1
    return counts
