"""The Blender child of a worker: a process running :mod:`blender_child` (or a Blender installation running
scripts/worker.py), reached over a PAIR socket. Light to import: ``synthfarm render`` starts its child with this
before it loads the rest of the command (:func:`start_early`), so Blender boots meanwhile.
"""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import zmq

from ..addon.core.heap import child_environment
from .tasklog import OutputTail

ROOT = Path(__file__).resolve().parent.parent
SCRATCH_PREFIX = "synthfarm-child-"


def local_gpus() -> int:
    """How many NVIDIA GPUs this machine has (``nvidia-smi -L``), without importing Blender; 0 if none.
    Other vendors' GPUs are still used by a worker (Cycles picks HIP/oneAPI/Metal), one worker in all."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in listing.splitlines())


def child_env(device: str, gpu: int | None) -> dict:
    """What tells a child which device to render on."""
    return {"SYNTHFARM_DEVICE": device, **({"SYNTHFARM_GPU": str(gpu)} if gpu is not None else {})}


class ChildError(Exception):
    """The Blender child cannot start; the message says why (its own words or its last lines) and the fix."""


class ChildCannotRun(ChildError):
    """The child said why it cannot run (no Blender module, no executable): starting it again would not help."""


class Child:
    """A Blender process running :mod:`blender_child`, reached over a PAIR socket. Its output is passed on
    to our stderr and its end kept (tasklog.OutputTail), to say why it died."""

    def __init__(self, context: zmq.Context, blender: str | None = None, env: dict | None = None,
                 start_timeout: float = 120.0):
        self.env = dict(env or {})
        self.sock = context.socket(zmq.PAIR)
        self.sock.setsockopt(zmq.LINGER, 0)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        endpoint = f"tcp://127.0.0.1:{port}"
        # a temp folder of its own (Blender's and Python's temp files go there), removed when it ends however it ends
        self.scratch = tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-")
        env = {**(env or {}), "TMPDIR": self.scratch, "SYNTHFARM_SCRATCH": self.scratch}
        if blender:  # a Blender installation: the same child code, loaded by scripts/worker.py
            cmd = [blender, "-b", "--factory-startup", "--python", str(ROOT / "scripts" / "worker.py"), "--", endpoint]
        else:
            cmd = [sys.executable, "-m", "synthfarm.farm.blender_child", endpoint]
        # its own session: a Ctrl-C at the terminal reaches the supervisor, which decides the child's fate
        # its lines reach the task log as printed; glibc keeps freed memory for the labels' arrays (heap.py)
        env = {**os.environ, **child_environment(), "PYTHONUNBUFFERED": "1", **env}
        try:
            # stdin: a pipe never written to; when this process ends, however it ends, the child reads its end
            # and leaves (blender_child.watch_supervisor): no orphan renders on
            self.process = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as err:
            self.sock.close(linger=0)
            shutil.rmtree(self.scratch, ignore_errors=True)
            raise ChildCannotRun(f"cannot start the Blender child ({' '.join(cmd)}): {err}; give a Blender "
                                 "executable with --blender, or install the bpy module (pip install "
                                 "'synthfarm[blender]')") from None
        self.output = OutputTail(self.process.stdout)  # echoed to our stderr; each attempt's end is kept
        self.cmd, self.start_timeout, self.started = cmd, start_timeout, time.monotonic()
        self.ready = False

    def wait_ready(self) -> "Child":
        """Until the child says it is ready (it boots Blender meanwhile; start it early, wait late). Raises
        ChildCannotRun when it says why it cannot (no Blender module), ChildError with its last lines when it
        dies or stays silent."""
        deadline = self.started + self.start_timeout
        while not self.ready and time.monotonic() < deadline:
            if self.sock.poll(200):
                hello = self.sock.recv_json()
                if hello.get("fatal"):
                    self.kill()
                    raise ChildCannotRun(hello["fatal"])
                self.ready = bool(hello.get("ready"))
            elif self.process.poll() is not None:
                break
        if not self.ready:
            self.kill()
            self.output.wait(2)
            said = " | ".join(line for line in self.output.text().splitlines() if line.strip())[-1500:]
            raise ChildError(f"the Blender child did not start (exit code {self.process.poll()}; {' '.join(self.cmd)})"
                             + (f": {said}" if said else "") + "; check that Blender runs here (python -c "
                             "'import bpy', or the --blender executable), then start the worker again")
        return self

    def alive(self) -> bool:
        return self.process.poll() is None

    def rss_bytes(self) -> int:
        try:
            return psutil.Process(self.process.pid).memory_info().rss
        except psutil.Error:
            return 0

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.sock.close(linger=0)
        shutil.rmtree(self.scratch, ignore_errors=True)

    def stop(self) -> None:
        try:
            self.sock.send_json({"quit": True}, zmq.NOBLOCK)
            self.process.wait(timeout=10)
        except (zmq.ZMQError, subprocess.TimeoutExpired):
            pass
        self.kill()


_EARLY: list = []  # the child start_early made, until a worker takes it


def start_early(env: dict) -> None:
    """Start a child for the first worker of this process now; one left untaken is ended when the process ends."""
    _EARLY.append(Child(zmq.Context.instance(), None, env))
    atexit.register(lambda: _EARLY and _EARLY.pop().kill())


def take_early(env: dict) -> Child | None:
    """The early child if there is one for this ``env`` (one for other settings is left for its own worker, and
    ended with the process if none takes it)."""
    if not _EARLY or _EARLY[0].env != env:
        return None
    return _EARLY.pop()
