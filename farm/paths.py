"""Where the coordinator lets files be: datasets under its dataset root, recipes read in place only under the
shared roots it names, and an attempt's files committed only when they are regular files of its own job."""
from __future__ import annotations

import functools
import os
import stat
from pathlib import Path

from .settings import Settings
from ..addon.core.dataset.native import FOLDERS, MODELS, DatasetWriter
from ..addon.core.recipe import parse_recipe_text
from .transfer import FRAME_FOLDERS, frame_name

COMMITTED_FOLDERS = {*FRAME_FOLDERS, MODELS}  # the dataset folders a commit writes into (DatasetWriter.commit_stagings)


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


Staged = dict[str, set[str]]  # an attempt's staging folder: each of its folders ("" itself, "images", ...) with the
#                               names of the files in it (every folder listed, an empty one too)


class StagingRefused(ValueError):
    """An attempt's files may not be committed; the message says why."""


def vet_staging(staging: str, job_id: int, frames: int) -> tuple[str | None, Staged]:
    """Why an attempt's files may not be committed, or None: only regular files of its own job's frames, never
    through a link. With it, what the staging folder holds (one listing per folder, read once: the commit takes
    its files from it, the landing removes what it leaves by name). The dataset folders the files go to are
    looked at as they are committed (:func:`vet_folders`). Plain ``os`` calls: this runs for every finished job,
    on the coordinator's loop."""
    staged: Staged = {}
    try:
        if not stat.S_ISDIR(os.lstat(staging).st_mode):
            return "the attempt's staging folder is a link or a file; nothing is taken from it", staged
    except FileNotFoundError:
        return None, staged  # nothing staged
    return _vet_tree(staging, "", job_id, frames, staged), staged


def _vet_tree(folder: str, rel: str, job_id: int, frames: int, staged: Staged) -> str | None:
    """Refusal for the first entry under ``folder`` (``rel`` in the staging folder) that is a link, a special file
    or a file of another job; adds each folder's files to ``staged``."""
    names = staged[rel] = set()
    top = rel.partition("/")[0]
    suffix = FRAME_FOLDERS.get(top)  # None: no frame folder (anything goes); "": a folder in one (nothing goes)
    if suffix and top != rel:
        suffix = ""
    with os.scandir(folder) as entries:
        for entry in entries:  # the entries' types come from the listing itself (no stat, never through a link)
            if entry.is_file(follow_symlinks=False):
                if suffix is not None and not (suffix and frame_name(entry.name, suffix, job_id, frames)):
                    return f"{_rel(rel, entry)} is not a file of job {job_id}'s frames; the attempt is refused"
                names.add(entry.name)
            elif entry.is_dir(follow_symlinks=False):
                refused = _vet_tree(entry.path, _rel(rel, entry), job_id, frames, staged)
                if refused:
                    return refused
            else:
                return f"{_rel(rel, entry)} is a link or a special file; an attempt delivers regular files only"
    return None


def _rel(folder: str, entry: os.DirEntry) -> str:
    return f"{folder}/{entry.name}" if folder else entry.name


def written_folders(staged: Staged) -> set[str]:
    """The dataset folders a commit of these files writes into."""
    return {folder for folder, names in staged.items() if names and folder in COMMITTED_FOLDERS}


def vet_folders(out: str, folders) -> None:
    """Raise :class:`StagingRefused` if the dataset's own folder or one of ``folders`` in it (those files are
    committed to) is a link or no folder: looked at (lstat) right before a commit's renames, since a folder may
    become a link at any time."""
    for folder in ("", *sorted(folders)):
        path = f"{out}/{folder}" if folder else out
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue  # made by the commit, as a folder
        if stat.S_ISLNK(mode):
            raise StagingRefused(f"the dataset's folder {path} is a link; nothing is written through it")
        if not stat.S_ISDIR(mode):
            raise StagingRefused(f"the dataset's folder {path} is not a folder; nothing is written there")


def staged_frames(staged: Staged) -> set[str]:
    """The stems of the frames an attempt staged (those with their annotation, the commit marker)."""
    folder, suffix = FOLDERS["annotation"]
    return {name.removesuffix(suffix) for name in staged.get(folder, ()) if name.endswith(suffix)}


@functools.lru_cache(maxsize=64)
def frame_views(recipe: str) -> tuple[str, ...]:
    """The views each frame of a batch's recipe makes (a stereo sensor makes two); parsed once per recipe."""
    return tuple(view for view, _ in parse_recipe_text(recipe, None, check_files=False).views())


def missing_frames(arrived: set[str], job_id: int, frames: int, recipe: str) -> str | None:
    """Why an attempt that says it succeeded cannot count as done: the frames of its job (every view of every
    frame) that did not arrive, or None. A job recorded done without them would count as complete, silently."""
    expected = [DatasetWriter.frame_stem(job_id, k, view) for k in range(frames) for view in frame_views(recipe)]
    missing = [stem for stem in expected if stem not in arrived]
    if not missing:
        return None
    return (f"the attempt said it succeeded, but {len(missing)} of the {len(expected)} frames of job {job_id} did "
            f"not arrive ({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}); the job runs again. A "
            "worker that does not see the dataset's folder at the coordinator's path must not be given shared "
            "paths: submit without --shared, and its frames are uploaded")
