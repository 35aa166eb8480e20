"""The farm as separate processes on loopback (coordinator and workers through the `synthfarm` command),
shared by the end-to-end tests."""
import json
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from synthfarm.farm.client import FarmClient

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate, timeout: float, what: str, every: float = 0.3):
    """The first true value of ``predicate()``, asked every ``every`` seconds; fails naming ``what`` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def free_ports(n=4):
    """A run of n free ports, tried from a random place: test suites running side by side on one machine
    would otherwise all pick the same first free run and talk to each other's farms."""
    starts = list(range(20000, 60000, 7))
    random.SystemRandom().shuffle(starts)
    for start in starts:
        socks = []
        try:
            for port in range(start, start + n):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                socks.append(s)
            return start
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free ports")


CLI = ("-m", "synthfarm.cli")


def cli(*args, program=CLI, **kw):
    """The `synthfarm` command (``program``: what Python runs instead, e.g. a script that wraps it)."""
    return subprocess.Popen([sys.executable, *map(str, program), *map(str, args)], **kw)


class Farm:
    def __init__(self, tmp: Path, workers=2, coordinator_args=(), out_root: Path | None = None,
                 state: Path | None = None, coordinator_program=CLI):
        self.tmp, self.coordinator_args, self.coordinator_program = tmp, tuple(coordinator_args), coordinator_program
        self.out_root, self.state = out_root or tmp, state or tmp / "state"
        for _ in range(5):  # ports found free may be taken by another run before the coordinator binds them
            self.port = free_ports()
            self.coordinator = self.start_coordinator()
            if self._listening():
                break
        self.workers = [self.start_worker(f"w{i}") for i in range(workers)]
        self.client = FarmClient(f"tcp://127.0.0.1:{self.port + 1}", timeout=10)

    def _listening(self, timeout=120) -> bool:
        """Whether the coordinator came up on its ports (False: it ended, a port was taken)."""
        deadline = time.time() + timeout
        while time.time() < deadline and self.coordinator.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port + 1), timeout=0.5).close()
                return True
            except OSError:
                time.sleep(0.2)
        return False

    def start_coordinator(self):
        return cli("coordinator", "--port", self.port, "--data", self.state, "--heartbeat", 0.3,
                   "--lost-after", 3, "--out-root", self.out_root, "--shared-root", ROOT, "--shared-root", self.tmp,
                   *self.coordinator_args,
                   program=self.coordinator_program, stdout=subprocess.DEVNULL)

    def start_worker(self, name, work_dir: Path | None = None, cwd: Path | None = None):
        """A worker process; with ``work_dir`` (and ``cwd``) it is like one on another machine: it gets the
        inputs by content hash into a cache of its own."""
        extra = ("--work-dir", work_dir) if work_dir else ()
        return cli("worker", "--connect", f"tcp://127.0.0.1:{self.port}", "--name", name, *extra, cwd=cwd,
                   stdout=subprocess.DEVNULL)

    def submit(self, recipe: Path, jobs: int, out: Path) -> str:
        """Submit batch "batch" (again, while a coordinator slow to start under load does not answer yet)."""
        from synthfarm.farm.client import FarmError

        deadline = time.time() + 120
        while True:
            try:
                return self.client.submit(batch_id="batch", recipe=recipe.read_text(), recipe_dir=str(recipe.parent),
                                          out=str(out), count=jobs)["id"]
            except FarmError as err:
                if "no answer" not in str(err) or time.time() > deadline:
                    raise

    def ready(self, timeout=120) -> dict:
        """Wait until the coordinator answers (a process starts slowly on a loaded machine); its status."""
        from synthfarm.farm.client import FarmError

        deadline = time.time() + timeout
        while True:
            try:
                return self.client.status()
            except FarmError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    def wait(self, predicate, timeout=180):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                status = self.client.status("batch")
                if predicate(status):
                    return status
            except Exception:  # the coordinator may be down on purpose
                pass
            time.sleep(0.2)
        raise AssertionError(f"timed out; last status {self.client.status('batch')}")

    def stop(self):
        for proc in [*self.workers, self.coordinator]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.workers, self.coordinator]:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def check_dataset(out: Path, jobs: int, frames: int):
    annotations = sorted((out / "annotations").glob("*-ann.json"))
    assert len(annotations) == jobs * frames
    assert {int(p.name[:10]) for p in annotations} == set(range(jobs))
    assert not list(out.rglob("*.tmp*")) and not list((out / ".staging").glob("*"))
    for ann in annotations:
        stem = ann.name.removesuffix("-ann.json")
        for sub, suffix in (("images", ".png"), ("masks", ".png"), ("depth", ".exr"), ("metadata", "-meta.json")):
            assert (out / sub / f"{stem}{suffix}").is_file()
    done = [json.loads(line) for line in (out / "jobs.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in done if r["status"] == "done") == list(range(jobs))  # once each


def stage_frames(task) -> None:
    """Write a task's frames (every view of every frame) into its staging folder as the Blender child does (a
    dataset of the same layout, every file durable, each frame's annotation last): a tiny image, depth, instance
    mask, metadata and annotation."""
    import numpy as np

    from synthfarm.addon.core.dataset.native import DatasetWriter, FrameFiles
    from synthfarm.farm.paths import frame_views

    writer = DatasetWriter(Path(task.staging))
    writer.open(task.recipe, {"recipe_hash": "stand-in"}, {"name": "stand-in", "attempt": task.attempt_id})
    ids = np.arange(48, dtype=np.uint16).reshape(6, 8)
    writer.write_frames([FrameFiles(task.job_id, k, view, image_png=b"\x89PNG\r\n\x1a\n",
                                    depth=np.full((6, 8), 2.5, np.float32), instance_mask=ids,
                                    annotation={"objects": [], "job": task.job_id}, metadata={"seed": task.seed})
                         for k in range(task.frames) for view in frame_views(task.recipe)])


class StandIn:
    """A worker that speaks the protocol itself (no Blender): it takes tasks and answers them as told."""

    def __init__(self, endpoint: str, name: str, context=None, running: str | None = None, hello: bool = True):
        import zmq

        from synthfarm.farm import protocol as p

        self.p = p
        self.sock = (context or zmq.Context.instance()).socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.ROUTING_ID, name.encode())
        self.sock.connect(endpoint)
        self.name = name
        if hello:
            self.send("HELLO", p.Hello(worker_id=name, running=running))
            assert self.recv()[0] == "WELCOME"

    def send(self, kind, payload):
        self.sock.send_multipart(self.p.encode(kind, payload))

    def recv(self, timeout=5.0, skip=("HEARTBEAT",)):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0 and self.sock.poll(int(left * 1000)), f"{self.name}: no message"
            kind, msg = self.p.decode(self.sock.recv_multipart())
            if kind not in skip:
                return kind, msg

    def take(self, timeout=5.0):
        self.send("REQUEST", self.p.Request(worker_id=self.name))
        kind, msg = self.recv(timeout)
        return msg if kind == "TASK" else None

    def beat(self, attempt_id=None):
        self.send("HEARTBEAT", self.p.Heartbeat(worker_id=self.name, attempt_id=attempt_id))

    def finish(self, task, ok=True, error="", **extra):
        """Say the task ended (only that: a success whose frames are not staged is refused)."""
        self.send("DONE", self.p.Done(attempt_id=task.attempt_id, ok=ok, error=error, **extra))

    def render(self, task):
        """Do the task as a worker on the shared file system does: its frames staged, then DONE."""
        stage_frames(task)
        self.finish(task, frames=task.frames)

    def close(self):
        self.sock.close(linger=0)


def raw_request(endpoint: str, kind: str, body, timeout=10.0) -> dict:
    """A client request sent as raw JSON, past the client's own checks (as a hostile client would):
    the coordinator's REPLY as a dict. ``body``: a dict, or the JSON text itself."""
    import zmq

    from synthfarm.farm import protocol as p

    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        text = body if isinstance(body, str) else json.dumps(body)
        sock.send_multipart([p.VERSION, kind.encode(), text.encode()])
        assert sock.poll(int(timeout * 1000)), f"no reply to {kind} within {timeout} s"
        frames = sock.recv_multipart()
        return json.loads(frames[2])
    finally:
        sock.close()


class SmallDisk:
    """A tmpfs of ``size`` mounted on ``path`` (the tests run as root, as CI does): a disk that fills up."""

    def __init__(self, path: Path, size: str = "2m", inodes: int | None = None):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        options = f"size={size}" + (f",nr_inodes={inodes}" if inodes else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(self.path)], check=True)

    def fill_inodes(self) -> list[Path]:
        """Take every inode left (empty files); returns them (delete them to give the inodes back)."""
        made = []
        try:
            while True:
                made.append(self.path / f".inode{len(made)}")
                made[-1].touch()
        except OSError:
            made.pop()
        return made

    def fill(self) -> Path:
        """Fill it to the last byte; returns the filler file (delete it to free the space)."""
        filler = self.path / ".filler"
        with open(filler, "wb") as handle:
            try:
                while True:
                    handle.write(b"\0" * 65536)
                    handle.flush()
            except OSError:
                pass
        for i in range(64):  # the last blocks, byte by byte
            try:
                (self.path / f".fill{i}").write_bytes(b"\0" * 512)
            except OSError:
                break
        return filler

    def free(self) -> None:
        for path in self.path.glob(".fill*"):
            path.unlink()

    def close(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False)
