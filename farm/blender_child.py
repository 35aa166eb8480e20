"""The Blender side of a worker: a persistent process that renders the tasks its supervisor sends.

Runs with the bpy module (``python -m synthfarm.farm.blender_child ENDPOINT``) or inside Blender
(``blender -b --python scripts/worker.py -- ENDPOINT``). It talks to its supervisor over a PAIR socket:
it says ``ready``, then for each task sends ``progress`` after every frame and one ``done``. It keeps the
Runner (base scene, asset cache) between tasks; the supervisor restarts it when it dies or is recycled.
"""
from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

import zmq

from ..addon.core.dataset.background import BackgroundWriter
from ..addon.core.dataset.identity import batch_identity
from ..addon.core.dataset.native import DatasetWriter
from ..addon.core.jobs import JobSpec
from ..addon.core.recipe import parse_recipe_text
from . import protocol as p

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


def send(sock, message: dict, parent: int) -> None:
    """Send to the supervisor; a PAIR socket without its peer would block forever, so leave when it is gone."""
    while True:
        try:
            sock.send_json(message, zmq.NOBLOCK)
            return
        except zmq.Again:
            if os.getppid() != parent:  # the supervisor died mid-job (SIGKILL): do not hang as an orphan
                log.warning("supervisor %d is gone; exiting", parent)
                raise SystemExit(0) from None
            time.sleep(0.05)


def run_task(runner, task: p.Task, sock, parent: int) -> dict:
    start = time.perf_counter()
    root = Path(task.bundle_root) if task.bundle_root else None  # a job's inputs: nothing outside them is read
    recipe = parse_recipe_text(task.recipe, Path(task.recipe_dir), root=root)
    writer = DatasetWriter(Path(task.staging))
    identity = batch_identity(recipe, preview=task.preview, jobs=[(task.params, task.seed)])
    writer.open(task.recipe, identity, {"name": recipe.name, "attempt": task.attempt_id})  # a fresh staging folder
    job = JobSpec(id=task.job_id, params=task.params, seed=task.seed, frames=task.frames, preview=task.preview)
    views = len(recipe.views())
    reported = [0]

    def frame_done():  # between frames: say how many frames are durable (all their sensors' files), if more
        done = frames.durable_frames // views
        if done > reported[0]:
            reported[0] = done
            send(sock, {"progress": {"attempt_id": task.attempt_id, "frames_done": done,
                                     "frames_total": task.frames}}, parent)

    with (tempfile.TemporaryDirectory(prefix="job-") as scratch,  # inside the child's own temp folder
          BackgroundWriter(writer) as frames):  # frames written while the next renders; all durable on leaving
        report = runner.run_job(recipe, Path(task.recipe_dir), job, frames, Path(scratch), should_stop=frame_done)
    return {"attempt_id": task.attempt_id, "ok": True, "frames": report.frames,
            "seconds": time.perf_counter() - start, "device": runner.device.kind if runner.device else ""}


def no_space(err: BaseException | None) -> bool:
    """Whether an error (or one it came from) is a full disk."""
    while err is not None:
        if (isinstance(err, OSError) and err.errno == errno.ENOSPC) or "No space left on device" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


def main(endpoint: str) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s child %(name)s: %(message)s")
    # the supervisor decides this process's fate: a SIGTERM to the whole group (Slurm's scancel, a time limit,
    # systemd) must reach the supervisor first, so that it says BYE and the attempt is requeued, not failed
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
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
    sock.send_json({"ready": True, "pid": os.getpid()})
    parent = os.getppid()
    while True:
        while not sock.poll(1000):
            if os.getppid() != parent:  # the supervisor died (SIGKILL): do not linger as an orphan
                log.warning("supervisor %d is gone; exiting", parent)
                if os.environ.get("SYNTHFARM_SCRATCH"):
                    shutil.rmtree(os.environ["SYNTHFARM_SCRATCH"], ignore_errors=True)
                return
        message = sock.recv_json()
        if message.get("quit"):
            break
        task = p.Task.model_validate(message["task"])
        try:
            result = run_task(runner, task, sock, parent)
        except Exception as err:  # the job failed; the process is fine and takes the next one
            log.error("task %s failed: %s", task.attempt_id, err)
            result = {"attempt_id": task.attempt_id, "ok": False, "reason": "no_space" if no_space(err) else "",
                      "error": f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=4)}"[-2000:]}
        send(sock, {"done": result}, parent)
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
