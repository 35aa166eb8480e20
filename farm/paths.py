"""Where the coordinator lets files be: datasets under its dataset root, recipes read in place only under the
shared roots it names, and an attempt's files committed only when they are regular files of its own job."""
from __future__ import annotations

import os
from pathlib import Path

from .settings import Settings
from .transfer import FRAME_FOLDERS, frame_file


class RequestError(ValueError):
    """A request the coordinator refuses; the message says why and what to do."""


def dataset_folder(settings: Settings, out: str) -> Path:
    """Where a batch's dataset goes: a relative ``out`` under the dataset root; an absolute one must lie under
    it too unless the coordinator allows any folder. Links are resolved before the check."""
    root = settings.out_root
    if out.startswith("~") or "\0" in out:
        raise RequestError(f"out {out[:80]!r}: give a path under the dataset root {root}, or a relative one")
    path = Path(os.path.abspath(root / out))
    too_long = [part for part in path.parts if len(part.encode()) > 255]
    if too_long:
        raise RequestError(f"out: the name {too_long[0][:40]!r}... is longer than 255 bytes")
    resolved = path.resolve()
    if not settings.any_out and not resolved.is_relative_to(root):
        raise RequestError(f"out {out[:200]!r} is outside this coordinator's dataset root {root}; give a "
                           "relative path or one under that root (or start the coordinator with --any-out)")
    if resolved.exists() and not resolved.is_dir():
        raise RequestError(f"out {out[:200]!r} is a file, not a folder")
    return resolved


def shared_root(settings: Settings, recipe_dir: str) -> Path | None:
    """The allowed shared root a recipe folder lies under, or None."""
    folder = Path(os.path.abspath(recipe_dir)).resolve()
    return next((root for root in settings.shared_roots if folder.is_relative_to(root)), None)


def recipe_root(settings: Settings, recipe_dir: str) -> Path:
    """The allowed shared root a recipe sent without its files is read from (RequestError when there is none)."""
    root = shared_root(settings, recipe_dir)
    if root is not None:
        return root
    raise RequestError("this coordinator reads recipes from a shared file system only under "
                       + (", ".join(map(str, settings.shared_roots)) or "no folder (--shared-root is unset)")
                       + "; submit without --shared to send the recipe and its files")


def vet_staging(staging: Path, out: Path, job_id: int, frames: int) -> str | None:
    """Why an attempt's files may not be committed, or None: only regular files of its own job's frames, never
    through a link, and into dataset folders that are no links either."""
    for folder in ("", *FRAME_FOLDERS):
        if (out / folder).is_symlink():
            return f"the dataset's folder {out / folder} is a link; nothing is written through it"
    for folder, dirs, names in os.walk(staging, followlinks=False):
        for name in [*dirs, *names]:
            path = Path(folder) / name
            rel = path.relative_to(staging).as_posix()
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                return f"{rel} is a link or a special file; an attempt delivers regular files only"
            if name in names and rel.split("/")[0] in FRAME_FOLDERS and not frame_file(rel, job_id, frames):
                return f"{rel} is not a file of job {job_id}'s frames; the attempt is refused"
    return None
