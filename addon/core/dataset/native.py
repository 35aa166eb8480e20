"""The native dataset layout (see DESIGN.md) and its writer.

    <out>/dataset.yaml  recipe.yaml  jobs.jsonl
    <out>/images/{job:010}-{frame:04}-{sensor}.png   depth/…exr  normals/…exr  masks/…png  semantic/…png
    <out>/annotations/…-ann.json   <out>/metadata/…-meta.json

Every file is written under a temporary name in its final folder and renamed into place, so a crash
never leaves half a file under a real name. A frame's annotation is renamed last: a frame counts as
done when its annotation exists, and a job when all its frames' annotations do.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import yaml
from PIL import Image

from ..exr import write_depth, write_exr, write_normals
from ..files import new_temp_file
from .durable import TMP_MARK, DurableGroup, fsync_folder
from .identity import JOB_LIST_FILE, differences, job_list_lines, legacy_identity

log = logging.getLogger(__name__)

FOLDERS = {"image": ("images", ".png"), "depth": ("depth", ".exr"), "normals": ("normals", ".exr"),
           "mask": ("masks", ".png"), "semantic": ("semantic", ".png"),
           "flow_forward": ("flow_forward", ".exr"), "flow_backward": ("flow_backward", ".exr"),
           "disparity": ("disparity", ".exr"), "video": ("videos", ".mp4"),
           "metadata": ("metadata", "-meta.json"), "annotation": ("annotations", "-ann.json")}
FRAME_SUFFIXES = {folder: suffix for folder, suffix in FOLDERS.values()}  # a frame's file: <folder>/<stem><suffix>
OPTIONAL = ("flow_forward", "flow_backward", "disparity", "video")  # folders made when a recipe asks for them
MODELS = "models"  # one PLY per distinct model (see models.py)


class DatasetError(Exception):
    """The output folder cannot take this dataset; the message says what to do."""


class DatasetMismatchError(DatasetError):
    """The folder holds a dataset of another identity (recipe, seed, tier, parameters or resolution)."""


MISMATCH_FIX = ("Render into another folder (--out, out=...), or replace that dataset (--replace, replace=True: "
                "its files are deleted first).")
LOCK_FILE = ".synthfarm.lock"  # see lock.py


# -- atomic files -------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so writers that look at it work); on success
    it is fsynced and renamed onto ``path``, on error removed. The file's mode follows the umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_temp_file(path.parent, f".{path.name}.", TMP_MARK + path.suffix)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=1, allow_nan=False) + "\n").encode("utf-8")


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, json_bytes(data))


def write_png(path: Path, array: np.ndarray) -> None:
    """A greyscale PNG: 16-bit for uint16 arrays (instance or class ids), 8-bit for uint8."""
    dtype = np.uint8 if array.dtype == np.uint8 else np.uint16
    Image.fromarray(np.ascontiguousarray(array, dtype=dtype)).save(path, format="PNG", compress_level=1)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt", b"tIME")  # text and the modification time


def png_without_text(data: bytes) -> bytes:
    """A PNG without its text and time chunks (Blender and Cycles write the date and render times there),
    so that the same pixels give the same bytes. The image data is not touched."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    kept, at = [PNG_SIGNATURE], len(PNG_SIGNATURE)
    while at < len(data):
        length = int.from_bytes(data[at:at + 4], "big")
        chunk = data[at:at + 12 + length]  # length, type, data, CRC
        if chunk[4:8] not in PNG_TEXT_CHUNKS:
            kept.append(chunk)
        at += 12 + length
    return b"".join(kept)


def read_png(path: Path) -> np.ndarray:
    """A PNG as an array; 16-bit greyscale comes back as uint16."""
    with Image.open(path) as image:
        array = np.asarray(image)
    return array.astype(np.uint16) if image.mode.startswith("I") else array


def _id_image(kind: str, array: np.ndarray) -> np.ndarray:
    """An id image as uint16, refusing values a 16-bit PNG cannot hold (they would wrap silently)."""
    array = np.asarray(array)
    if array.ndim != 2 or not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        raise TypeError(f"the {kind} image must be a 2D integer array, got {array.dtype} {array.shape}")
    if array.size and (int(array.min()) < 0 or int(array.max()) > 65535):
        raise ValueError(f"the {kind} image holds ids outside 0..65535 ({array.min()}..{array.max()}); "
                         "a 16-bit PNG cannot store them")
    return array.astype(np.uint16, copy=False)


def require_dataset(root: Path) -> dict:
    return DatasetWriter(root).require()


def job_record(job_id: int, parameters: dict, seed: int, status: str, **extra) -> dict:
    """One line of jobs.jsonl."""
    return {"id": job_id, "parameters": parameters, "seed": seed, "status": status, **extra}


@dataclass
class FrameFiles:
    """What one frame of one sensor writes. ``flow`` is (forward, backward), each (H, W, 2) in pixels (channels X,
    Y); ``disparity`` (H, W) in pixels (channel Z); ``image_png`` the PNG's bytes, or a PNG file to move in. A
    frame may be written in parts: it is committed by the part that has its ``annotation``, which must come last
    (the runner queues a frame whole, once its labels are done)."""

    job_id: int
    frame: int
    sensor: str
    annotation: dict | None = None
    metadata: dict | None = None
    image_png: bytes | Path | None = None
    depth: np.ndarray | None = None
    normals: np.ndarray | None = None
    instance_mask: np.ndarray | None = None
    semantic_mask: np.ndarray | None = None
    flow: tuple[np.ndarray, np.ndarray] | None = None
    disparity: np.ndarray | None = None


# -- the writer -----------------------------------------------------------------------------------------
class DatasetWriter:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.fsyncs = 0  # by the frame writes (a figure for the benchmarks)

    # -- opening and resuming --
    def info(self) -> dict:
        path = self.root / "dataset.yaml"
        if not path.is_file():
            return {}
        try:
            info = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise DatasetError(f"{path} is not valid YAML ({error}); repair it, or choose another --out") from error
        if not isinstance(info, dict):
            raise DatasetError(f"{path} does not describe a dataset (not a mapping); choose another --out")
        return info

    def open(self, recipe_text: str, identity: dict, info: dict, *, jobs: list[tuple[dict, int]] | None = None,
             replace: bool = False) -> set[int]:
        """Create the dataset, or resume it when it has the same identity (see identity.py); with
        ``replace`` an existing dataset is deleted first. ``jobs``: the (params, seed) of every job of a
        job-list batch, written to job_list.jsonl. Returns the completed job ids."""
        existing = self.info()
        replaced = bool(existing and replace)
        if replaced:
            self.clear()
            existing = {}
        if existing:
            self._check_identity(existing, identity)
            self.remove_leftovers()
            self._make_folders()
            done = self.completed_jobs()
            log.info("resuming %s: %d jobs already complete", self.root, len(done))
            return done
        foreign = self._foreign_entries()
        if foreign and not replaced:  # files the user kept beside a dataset may stay beside the new one
            raise DatasetError(f"{self.root} is not empty and holds no synthfarm dataset (no dataset.yaml; it has "
                               f"{', '.join(foreign[:5])}); choose an empty or new --out folder")
        self.remove_leftovers()
        if "attempt" not in info:  # an attempt's staging dataset (farm/landing.py) gets a folder when it first
            self._make_folders()  # writes into it: the landing then empties and removes only those
        atomic_write_text(self.root / "recipe.yaml", recipe_text)
        if jobs:
            atomic_write_text(self.root / JOB_LIST_FILE, "".join(f"{line}\n" for line in job_list_lines(jobs)))
        self._write_info({**info, "recipe_hash": identity["recipe_hash"], "identity": identity, "complete": False,
                          "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
        return set()

    def _check_identity(self, existing: dict, identity: dict) -> None:
        there = existing.get("identity")
        if there is None:  # written before identities were recorded: compare what it did record
            there = legacy_identity(existing)
            if there is None:
                raise DatasetMismatchError(
                    f"{self.root} holds a dataset that does not record its seed, tier and parameter values, so "
                    f"nothing can be added to it safely. {MISMATCH_FIX}")
            identity = {key: identity.get(key) for key in there}
        diffs = differences(there, identity)
        if diffs:
            raise DatasetMismatchError(f"{self.root} holds another dataset ({'; '.join(diffs)}): its frames and "
                                       f"these would mix. {MISMATCH_FIX}")

    def clear(self) -> None:
        """Delete the dataset in this folder: every file and folder synthfarm writes there (its exports and
        report included); anything else is left."""
        from .convert import EXPORTERS

        names = {folder for folder, _ in FOLDERS.values()} | set(EXPORTERS) | {
            MODELS, "report", ".farm", ".staging", "dataset.yaml", "recipe.yaml", "jobs.jsonl", JOB_LIST_FILE}
        for name in sorted(names):
            path = self.root / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        log.warning("deleted the dataset in %s (replace)", self.root)

    def require(self) -> dict:
        """The dataset's info, or a DatasetError saying why this folder is no dataset to read (yet)."""
        if not (self.root / "dataset.yaml").is_file():
            raise DatasetError(f"{self.root} is not a synthfarm dataset (it has no dataset.yaml): give the folder "
                               "that `synthfarm render --out` wrote")
        info = self.info()
        if not any((self.root / "annotations").glob("*-ann.json")):
            raise DatasetError(f"{self.root} holds no finished frame yet (its render stopped before a job was "
                               "complete): run the same render command again to resume it")
        return info

    def _make_folders(self) -> None:
        for kind, (folder, _) in FOLDERS.items():
            if kind not in OPTIONAL:
                (self.root / folder).mkdir(parents=True, exist_ok=True)

    def _foreign_entries(self) -> list[str]:
        """What a folder without dataset.yaml holds beyond the traces of an interrupted ``open``."""
        if not self.root.is_dir():
            return []
        ours = {folder for folder, _ in FOLDERS.values()}
        foreign = []
        for entry in sorted(self.root.iterdir()):
            if entry.name in ("recipe.yaml", LOCK_FILE) or (entry.name.startswith(".") and TMP_MARK in entry.name):
                continue
            if entry.is_dir() and entry.name in ours and not any(entry.iterdir()):
                continue
            foreign.append(entry.name)
        return foreign

    def _write_info(self, info: dict) -> None:
        atomic_write_text(self.root / "dataset.yaml", yaml.safe_dump(info, sort_keys=False))

    def remove_leftovers(self) -> None:
        """Delete temporary files a crash or a hard interrupt left behind."""
        for path in self.root.rglob(f".*{TMP_MARK}*"):
            path.unlink(missing_ok=True)

    # -- frames --
    @staticmethod
    def frame_stem(job_id: int, frame: int, sensor: str) -> str:
        return f"{job_id:010d}-{frame:04d}-{sensor}"

    def frame_paths(self, job_id: int, frame: int, sensor: str) -> dict[str, Path]:
        stem = self.frame_stem(job_id, frame, sensor)
        return {kind: self.root / folder / f"{stem}{suffix}" for kind, (folder, suffix) in FOLDERS.items()}

    def job_complete(self, job_id: int, frames: int, sensors: list[str]) -> bool:
        """Whether every frame of every sensor of the job has its annotation (the commit marker) in place."""
        return all(self.frame_paths(job_id, frame, sensor)["annotation"].is_file()
                   for frame in range(frames) for sensor in sensors)

    def write_frame(self, job_id: int, frame: int, sensor: str, **files) -> dict[str, Path]:
        """Write one frame's files (the keywords of :class:`FrameFiles`), durably, the annotation last."""
        return self.write_frames([FrameFiles(job_id, frame, sensor, **files)])[0]

    def write_frames(self, frames: list["FrameFiles"], models: dict[str, tuple] | None = None) -> list[dict]:
        """Write frames' files and ``models`` ({key: (vertices, faces)}, those the dataset lacks) as one durable
        group (durable.py): every file fsynced, renamed, each folder fsynced once; then the annotations (the
        frames' commit markers), so that a frame counts as done only once all its files are durable. Returns
        each frame's paths."""
        masks = [{kind: _id_image(kind, array) for kind, array in (("mask", f.instance_mask),
                                                                   ("semantic", f.semantic_mask)) if array is not None}
                 for f in frames]  # refused before anything is written
        all_paths = [self.frame_paths(f.job_id, f.frame, f.sensor) for f in frames]
        with DurableGroup() as group:
            group.remove([paths["annotation"] for paths in all_paths])  # a re-done frame is not done until all of
            #                                                             it is rewritten
            for key, (vertices, faces) in (models or {}).items():
                path = self.root / MODELS / f"{key}.ply"
                if not path.is_file():
                    from .models import ply  # plyfile only where models are written

                    model = ply(vertices, faces)
                    group.add(path, lambda tmp, m=model: m.write(str(tmp)))
            for f, paths, id_images in zip(frames, all_paths, masks):
                self._add_frame(group, f, paths, id_images)
        self.fsyncs += group.fsyncs
        return all_paths

    @staticmethod
    def _add_frame(group: DurableGroup, f: "FrameFiles", paths: dict[str, Path], masks: dict) -> None:
        if isinstance(f.image_png, bytes):
            group.add_bytes(paths["image"], f.image_png)
        elif f.image_png is not None:  # a file: moved into place
            group.add_file(paths["image"], f.image_png)
        if f.depth is not None:
            group.add(paths["depth"], lambda tmp: write_depth(tmp, f.depth))
        if f.normals is not None:
            group.add(paths["normals"], lambda tmp: write_normals(tmp, f.normals))
        for kind, array in masks.items():
            group.add(paths[kind], lambda tmp, a=array: write_png(tmp, a))
        floats = {}
        if f.flow is not None:
            floats.update({kind: {"X": v[..., 0], "Y": v[..., 1]}
                           for kind, v in zip(("flow_forward", "flow_backward"), f.flow)})
        if f.disparity is not None:
            floats["disparity"] = {"Z": f.disparity}
        for kind, channels in floats.items():
            group.add(paths[kind], lambda tmp, c=channels: write_exr(tmp, c))
        if f.metadata is not None:
            group.add_bytes(paths["metadata"], json_bytes(f.metadata))
        if f.annotation is not None:
            group.add_bytes(paths["annotation"], json_bytes(f.annotation), marker=True)

    def write_model(self, key: str, vertices: np.ndarray, faces: np.ndarray) -> None:
        """models/<key>.ply, unless the dataset has it already (a key names one mesh)."""
        self.write_frames([], {key: (vertices, faces)})

    def commit_stagings(self, stagings: list[tuple[str, dict[str, set[str]]]]) -> list[list[str]]:
        """Move the frames attempts wrote into their staging folders (datasets of the same layout, inside this one,
        so on the same file system; each given with the names of the files in each of its folders, as listed when
        they were vetted) into this dataset as one durable group (durable.py), as :meth:`write_frames` writes them:
        renamed into place, each folder fsynced once, the annotations last, their folder fsynced before this returns
        (before the jobs are recorded done). A staged file's bytes are durable already (the worker's writer fsyncs
        them, the transfer server an upload's when it ends): they are not fsynced again. The staging folders are
        left for the caller to remove. Returns each staging's frame stems."""
        root, all_stems = os.fspath(self.root), []
        annotations, ann_suffix = FOLDERS["annotation"]
        with DurableGroup() as group:
            for _, files in stagings:
                all_stems.append(sorted(n[:-len(ann_suffix)] for n in files.get(annotations, ())
                                        if n.endswith(ann_suffix)))
            group.remove([f"{root}/{annotations}/{stem}{ann_suffix}" for stems in all_stems for stem in stems])
            for (staging, files), stems in zip(stagings, all_stems):
                frames = set(stems)
                for folder, names in files.items():  # one pass over what was staged: a frame's files, of the
                    suffix = FRAME_SUFFIXES.get(folder)  # frames that have their annotation
                    if suffix is None or not names:
                        continue
                    into, source = f"{root}/{folder}", f"{staging}/{folder}"
                    group.move_in(into, [(f"{source}/{name}", f"{into}/{name}") for name in sorted(names)
                                         if name.endswith(suffix) and name[:-len(suffix)] in frames],
                                  folder == annotations)
                into = f"{root}/{MODELS}"
                models = [name for name in sorted(files.get(MODELS, ()))  # before the annotations that name them
                          if name.endswith(".ply") and not os.path.lexists(f"{into}/{name}")]
                group.move_in(into, [(f"{staging}/{MODELS}/{name}", f"{into}/{name}") for name in models])
        self.fsyncs += group.fsyncs
        return all_stems

    # -- jobs --
    def record_job(self, job_id: int, parameters: dict, seed: int, status: str, **extra) -> None:
        """Append a line to jobs.jsonl; a later line for the same id supersedes earlier ones."""
        self.record_jobs([job_record(job_id, parameters, seed, status, **extra)])

    def record_jobs(self, records: list[dict]) -> None:
        """Append several job records with one write and one fsync (the farm groups a poll cycle's)."""
        if not records:
            return
        text = "".join(json.dumps(r) + "\n" for r in records)
        path = self.root / "jobs.jsonl"
        if path.is_file() and path.stat().st_size:
            with open(path, "rb") as handle:  # a crash mid-line must not swallow this record into that line
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    text = "\n" + text
        new = not path.exists()
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if new:  # its name too
            fsync_folder(self.root)

    def jobs(self) -> dict[int, dict]:
        """The latest line of every job (a torn last line from a crash is ignored)."""
        path = self.root / "jobs.jsonl"
        out: dict[int, dict] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # torn by a crash while it was written
                if isinstance(record, dict) and "id" in record:
                    out[record["id"]] = record
        return out

    def completed_jobs(self) -> set[int]:
        """Jobs recorded done whose frames all have their annotation in place."""
        done = set()
        for job_id, record in self.jobs().items():
            if record.get("status") != "done":
                continue
            stems = record.get("stems")
            if stems is None or all((self.root / "annotations" / f"{s}-ann.json").is_file() for s in stems):
                done.add(job_id)
        return done

    def finalize(self, counts: dict) -> None:
        """Rewrite dataset.yaml with counts; ``complete`` once every requested job is done."""
        info = self.info()
        frames = len(list((self.root / "annotations").glob("*-ann.json")))
        complete = counts.get("jobs", 0) >= counts.get("jobs_requested", 0)
        info.update(counts=dict(counts, frames=frames), complete=complete,
                    updated=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
        self._write_info(info)
