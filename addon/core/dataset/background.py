"""A dataset's frames encoded and written on a thread of their own, while the next frame renders.

The render thread (Blender's main thread: every bpy call stays there) queues a frame's arrays and bytes and
goes on; the writer thread encodes them (OpenEXR, PNG, JSON: numpy and the encoders release the GIL) and makes
them durable. Whatever it finds queued when it wakes is written as one durable group (``write_frames``: each
folder fsynced once per group), then the job records queued behind those frames are appended to jobs.jsonl (one
fsync): a frame or a job is counted done only once all its files are durable. After an error nothing more is
written (a later job must not be recorded done over a frame that failed) and every call raises it.

Under Python 3.11 (Blender 5.0) there is no such thread: every write is done at once on the caller's thread
(core/threads.py).
"""
from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

from ..threads import threads_beside_bpy
from .native import DatasetWriter, FrameFiles, job_record

log = logging.getLogger(__name__)
_STOP = object()
QUEUE_DEPTH = 8  # writes a render may run ahead of the disk (a frame's pixels hold its passes in memory)


class BackgroundWriter:
    """A :class:`DatasetWriter`'s frame, model and job-record writes, queued in order and done by one thread.
    ``drain`` waits until everything queued is durable; ``close`` drains and ends the thread. A context manager
    closes on leaving (and then raises the writer's error, if there was one and nothing else is raised).
    ``first``: called on the writer's thread before anything is written (e.g. opening the dataset while the first
    frame renders); its error is the writer's. ``threaded=False`` (by default in a Blender 5.0 process: core/threads.py):
    no thread, every write done by the call that queues it (``first`` by this constructor), each its own group."""

    def __init__(self, dataset: DatasetWriter, depth: int = QUEUE_DEPTH, first=None,
                 threaded: bool | None = None):
        self.dataset = dataset
        self._first = first
        self.durable_frames = 0  # frames (of one sensor) committed durably so far
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._open = True
        threaded = threads_beside_bpy() if threaded is None else threaded
        self._thread = threading.Thread(target=self._run, name="synthfarm-writer", daemon=True) if threaded else None
        if self._thread is not None:
            self._thread.start()
        elif first is not None:
            self._attempt(first)

    # -- what the render thread calls --
    def write_frame(self, job_id: int, frame: int, sensor: str, **files) -> None:
        self._put(FrameFiles(job_id, frame, sensor, **files))

    def write_model(self, key: str, vertices, faces) -> None:
        self._put(("model", key, vertices, faces))

    def record_job(self, job_id: int, parameters: dict, seed: int, status: str, **extra) -> None:
        """Appended to jobs.jsonl once every frame queued before it is durable."""
        self._put(("record", job_record(job_id, parameters, seed, status, **extra)))

    def frame_paths(self, job_id: int, frame: int, sensor: str) -> dict[str, Path]:
        return self.dataset.frame_paths(job_id, frame, sensor)

    def frame_stem(self, job_id: int, frame: int, sensor: str) -> str:
        return self.dataset.frame_stem(job_id, frame, sensor)

    def drain(self) -> None:
        self._queue.join()
        self._raise()

    def close(self, raise_error: bool = True) -> None:
        """Write what is queued and end the thread; then raise the writer's error, if any (or only log it)."""
        self._open = False
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        if self._error is not None and not raise_error:
            log.error("the dataset writer failed: %s", self._error)
            return
        self._raise()

    def __enter__(self) -> "BackgroundWriter":
        return self

    def __exit__(self, kind, error, trace) -> None:
        self.close(raise_error=kind is None)  # when already failing: keep that error
    def _put(self, item) -> None:
        self._raise()
        if not self._open:
            raise RuntimeError("the dataset writer is closed")
        if self._thread is None:
            self._attempt(self._write, [item])
            self._raise()
        else:
            self._queue.put(item)

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    # -- the writer thread --
    def _attempt(self, work, *args) -> None:
        """``work`` unless the writer already failed; its error is the writer's (raised to the render thread)."""
        if self._error is None:
            try:
                work(*args)
            except BaseException as err:  # noqa: BLE001 - handed to the render thread
                self._error = err

    def _run(self) -> None:
        if self._first is not None:
            self._attempt(self._first)
        while True:
            items = [self._queue.get()]
            while True:  # everything queued meanwhile goes into the same durable group
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._attempt(self._write, [item for item in items if item is not _STOP])
            finally:
                for _ in items:
                    self._queue.task_done()
            if any(item is _STOP for item in items):
                return

    def _write(self, items: list) -> None:
        frames = [item for item in items if isinstance(item, FrameFiles)]
        models = {item[1]: item[2:] for item in items if isinstance(item, tuple) and item[0] == "model"}
        records = [item[1] for item in items if isinstance(item, tuple) and item[0] == "record"]
        if frames or models:
            self.dataset.write_frames(frames, models)
            self.durable_frames += sum(f.annotation is not None for f in frames)
        self.dataset.record_jobs(records)
