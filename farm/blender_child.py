"""The Blender side of a worker: a persistent process that renders the tasks its supervisor sends.

Runs with the bpy module (``python -m synthfarm.farm.blender_child ENDPOINT``) or inside Blender
(``blender -b --python scripts/worker.py -- ENDPOINT``). It talks to its supervisor over a PAIR socket:
it says ``ready``, then for each task sends ``progress`` between frames, ``rendered`` when the task's last frame
is rendered, and ``done`` once all the task's files are durable (or at once when the task failed before that). Between
``rendered`` and ``done`` it may take the next task: that one renders while the previous one's files are written
(at most two tasks here, one rendering, one being made durable). It keeps the Runner (base scene, asset cache)
between tasks; the supervisor restarts it when it dies or is recycled.
"""
from __future__ import annotations

import ctypes
import errno
import functools
import logging
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import zmq

from ..addon.core.dataset.background import BackgroundWriter
from ..addon.core.dataset.native import DatasetWriter
from ..addon.core.jobs import JobSpec
from ..addon.core.recipe import Recipe, parse_recipe_text
from ..addon.core.threads import threads_beside_bpy
from . import protocol as p
from .tasklog import end_mark

log = logging.getLogger(__name__)
NO_BLENDER_FIX = ("install Blender's Python module for this Python (pip install 'synthfarm[blender]': bpy 5.3 on "
                  "Python 3.13, bpy 5.0 on 3.11), or run the worker inside Blender (synthfarm worker --blender "
                  "/path/to/blender)")


def load_runner():
    """The engine's Runner class; raises ChildStartError (cause and fix) when Blender cannot be imported."""
    try:
        from ..addon.engine.runner import Runner
    except ImportError as err:
        raise ChildStartError(f"Blender cannot be imported in {sys.executable} ({type(err).__name__}: {err}); "
                              f"{NO_BLENDER_FIX}") from err
    return Runner


class ChildStartError(Exception):
    """This process cannot render: the message says why and what to do."""


def leave(why: str) -> None:
    """The supervisor is gone: nobody will take this process's results. End it now, from any thread, with its
    scratch folder (a render in progress is abandoned; its attempt is requeued by the coordinator)."""
    log.warning("%s; exiting", why)
    if os.environ.get("SYNTHFARM_SCRATCH"):
        shutil.rmtree(os.environ["SYNTHFARM_SCRATCH"], ignore_errors=True)
    sys.stderr.flush()
    os._exit(0)


def watch_supervisor(parent: int) -> None:
    """Leave as soon as the supervisor is gone, whatever this process is doing (waiting, rendering, sending).

    The supervisor holds the write end of this process's stdin, a pipe it never writes to: when it ends, however
    it ends (SIGKILL included), the kernel closes it and a read here returns end-of-file at once. A thread waits
    for that (Cycles releases Python's lock while it renders). Chosen over PR_SET_PDEATHSIG (Linux only, and
    fired when the *thread* that started the child ends, and an in-process farm starts children from worker
    threads) and over polling the parent's pid (noticed only between polls, and only where this process polls:
    a long render never did). A child whose stdin is no pipe (started by hand) falls back on the pid, polled
    while it waits for tasks and sends."""
    try:
        if not stat.S_ISFIFO(os.fstat(0).st_mode):
            return
    except OSError:
        return

    def wait_for_end_of_file():
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        leave(f"supervisor {parent} is gone (its pipe closed)")

    threading.Thread(target=wait_for_end_of_file, name="supervisor-watch", daemon=True).start()


class Link:
    """The PAIR socket to the supervisor, shared by the render thread and the thread that finishes the previous job
    (ZeroMQ sockets are not thread-safe: every use holds a lock). A PAIR socket without its peer would block
    forever, so this process leaves when the supervisor is gone."""

    def __init__(self, sock, parent: int):
        self.sock, self.parent = sock, parent
        self._lock = threading.Lock()

    def _check_parent(self) -> None:
        if os.getppid() != self.parent:  # the supervisor died (SIGKILL): do not linger as an orphan
            leave(f"supervisor {self.parent} is gone")

    def send(self, message: dict) -> None:
        while True:
            with self._lock:
                try:
                    self.sock.send_json(message, zmq.NOBLOCK)
                    return
                except zmq.Again:
                    pass
            self._check_parent()
            time.sleep(0.05)

    def receive(self, finishing: threading.Thread | None = None) -> dict:
        """The supervisor's next message. While ``finishing`` (a thread that sends when it ends) is alive, the lock
        is held only to look (never while waiting, so that thread is never kept from sending)."""
        while True:
            busy = finishing is not None and finishing.is_alive()
            with self._lock:
                if self.sock.poll(0 if busy else 1000):
                    return self.sock.recv_json()
            if busy:
                finishing.join(0.002)
            self._check_parent()


@functools.lru_cache(maxsize=4)
def task_recipe(text: str, recipe_dir: str, bundle_root: str) -> Recipe:
    """A task's recipe, parsed and checked once for all the tasks of a batch (they carry the same text and folders):
    ~2-5 ms a job, and the runner hashes a Recipe object once (Runner.recipe_hash). Nothing mutates a parsed Recipe;
    a recipe that does not parse is not kept (its error is each task's)."""
    return parse_recipe_text(text, Path(recipe_dir), root=Path(bundle_root) if bundle_root else None)


def render_task(runner, task: p.Task, link: Link):
    """Render every frame of ``task`` (on this thread: bpy's). Returns the rest of the job, to call on another
    thread while the next job renders: it waits until every file the job wrote is durable and returns the job's
    result (or raises the job's writer error)."""
    start = time.perf_counter()
    recipe = task_recipe(task.recipe, task.recipe_dir, task.bundle_root)  # reads nothing outside its inputs
    writer = DatasetWriter(Path(task.staging))
    job = JobSpec(id=task.job_id, params=task.params, seed=task.seed, frames=task.frames, preview=task.preview)
    views = len(recipe.views())
    reported = [0]

    def frame_done():  # between frames: say how many frames are durable (all their sensors' files), if more
        done = frames.durable_frames // views
        if done > reported[0]:
            reported[0] = done
            link.send({"progress": {"attempt_id": task.attempt_id, "frames_done": done,
                                    "frames_total": task.frames}})

    scratch = tempfile.TemporaryDirectory(prefix="job-")  # inside the child's own temp folder
    # the attempt's staging folder holds its frames' files only (what the coordinator lands); its folders are made by
    # the frames' durable groups, written while the next frame (or the next job) renders. No dataset.yaml or
    # recipe.yaml there: nothing reads them (two files made durable a job, ~10 ms of the writer's time)
    frames = BackgroundWriter(writer)
    try:
        report = runner.run_job(recipe, Path(task.recipe_dir), job, frames, Path(scratch.name),
                                should_stop=frame_done)
    except BaseException:
        frames.close(raise_error=False)  # the render's error is the job's
        scratch.cleanup()
        raise

    def durable() -> dict:
        try:
            frames.close()  # every file durable, or the writer's error
        finally:
            scratch.cleanup()
        return {"attempt_id": task.attempt_id, "ok": True, "frames": report.frames,
                "seconds": time.perf_counter() - start, "device": runner.device.kind if runner.device else ""}

    return durable


def failure(task: p.Task, err: Exception) -> dict:
    log.error("task %s failed: %s", task.attempt_id, err)
    return {"attempt_id": task.attempt_id, "ok": False, "reason": "no_space" if no_space(err) else "",
            "error": f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=4)}"[-2000:]}


def finish_task(task: p.Task, durable, link: Link) -> None:
    """On its own thread: the job's DONE once all its files are durable (or its writer failed)."""
    try:
        result = durable()
    except Exception as err:  # noqa: BLE001 - the writer's error is this job's failure, not the next one's
        result = failure(task, err)
    link.send({"done": result})


def no_space(err: BaseException | None) -> bool:
    """Whether an error (or one it came from) is a full disk."""
    while err is not None:
        if (isinstance(err, OSError) and err.errno == errno.ENOSPC) or "No space left on device" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


def end_output(attempt_id: str) -> None:
    """Print the attempt's end mark behind everything it printed (Python's streams, and Blender's C stdio buffers
    where the C library can be reached): the supervisor keeps the attempt's log up to the mark."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):  # no C library to reach (Windows): Python's output only
        pass
    sys.stdout.buffer.write(end_mark(attempt_id))
    sys.stdout.buffer.flush()


def main(endpoint: str) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s child %(name)s: %(message)s")
    # the supervisor decides this process's fate: a SIGTERM to the whole group (Slurm's scancel, a time limit,
    # systemd) must reach the supervisor first, so that it says BYE and the attempt is requeued, not failed
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    parent = os.getppid()  # before Blender loads: a supervisor that dies meanwhile is noticed too
    watch_supervisor(parent)
    context = zmq.Context.instance()
    sock = context.socket(zmq.PAIR)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.connect(endpoint)
    try:
        runner = load_runner()(device=os.environ.get("SYNTHFARM_DEVICE", "auto"),
                               gpu_index=int(os.environ["SYNTHFARM_GPU"]) if os.environ.get("SYNTHFARM_GPU") else None)
    except Exception as err:  # no Blender, a broken one, no device: the supervisor reports it and stops
        cause = str(err) if isinstance(err, ChildStartError) else f"{type(err).__name__}: {err}"
        sock.send_json({"fatal": cause})
        sock.close(linger=2000)
        sys.exit(3)
    link = Link(sock, parent)
    link.send({"ready": True, "pid": os.getpid()})
    finishing: threading.Thread | None = None  # the previous job, its files being made durable
    while True:
        message = link.receive(finishing)
        if message.get("quit"):
            break
        task = p.Task.model_validate(message["task"])
        try:
            durable = render_task(runner, task, link)
        except Exception as err:  # the job failed; the process is fine and takes the next one
            result = failure(task, err)  # logged: in the attempt's log, before its end mark
            end_output(task.attempt_id)
            link.send({"done": {**result, "output_ended": True}})
            continue
        end_output(task.attempt_id)  # the attempt's log ends with its render (see worker.py)
        if finishing is not None:
            finishing.join()  # two jobs at most: one rendering, one becoming durable
        link.send({"rendered": {"attempt_id": task.attempt_id}})  # the next task may come now
        if not threads_beside_bpy():  # Python 3.11 (Blender 5.0): no thread beside bpy (core/threads.py)
            finish_task(task, durable, link)
            continue
        finishing = threading.Thread(target=finish_task, args=(task, durable, link), daemon=True,
                                     name=f"finish-{task.attempt_id[:8]}")
        finishing.start()
    if finishing is not None:
        finishing.join()
    sock.close()
    context.term()  # anything still queued is sent (the socket's linger)
    # Blender's own exit takes about half a second and leaves nothing we need (its temp files are in the scratch
    # folder, which the supervisor removes): leave at once, output flushed
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[-1])
