"""The worker supervisor sleeps while its Blender child renders: it wakes for messages and heartbeats, not on a
short timer (it once woke four times a heartbeat, burning CPU beside the render). Worker and coordinator sleep
long when nothing is due, and stop() wakes them at once (``synthfarm render`` waited for their timeouts)."""
import sys
import threading
import time

import zmq

from synthfarm.farm import protocol as p
from synthfarm.farm.coordinator import Coordinator
from synthfarm.farm.worker import Worker

TASKS = '''#!{python}
import sys, time, zmq
sock = zmq.Context.instance().socket(zmq.PAIR)
sock.connect(sys.argv[-1])
sock.send_json({{"ready": True}})
while True:
    message = sock.recv_json()
    if message.get("quit"):
        break
'''  # a stand-in child's loop over its tasks; what it does with each follows
CHILD = TASKS + '''    task = message["task"]
    print("Fra:1 | Rendering", flush=True)
    time.sleep({seconds})
    sock.send_json({{"done": {{"attempt_id": task["attempt_id"], "ok": True, "frames": 1}}}})
'''


def standin(tmp_path, seconds: float):
    """A stand-in for Blender: the child's side of the PAIR socket; each task takes ``seconds``."""
    blender = tmp_path / "standin-blender"
    blender.write_text(CHILD.format(python=sys.executable, seconds=seconds))
    blender.chmod(0o755)
    return blender


def recv(sock, kind, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sock.poll(100):
            frames = sock.recv_multipart()
            if frames[2] == kind.encode():
                return frames
    raise AssertionError(f"no {kind} from the worker")


class CountedPoller(zmq.Poller):
    made = 0

    def __init__(self):
        super().__init__()
        CountedPoller.made += 1


def test_the_supervisor_sleeps_while_its_child_renders(tmp_path, monkeypatch):
    render_seconds, heartbeat = 3.0, 1.0
    monkeypatch.setattr(zmq, "Poller", CountedPoller)
    blender = standin(tmp_path, render_seconds)
    context = zmq.Context()
    coordinator = context.socket(zmq.ROUTER)  # the coordinator's side, played by the test
    coordinator.setsockopt(zmq.LINGER, 0)
    port = coordinator.bind_to_random_port("tcp://127.0.0.1")
    worker = Worker(f"tcp://127.0.0.1:{port}", "w0", blender=str(blender), context=context,
                    work_dir=tmp_path / "w0")
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        identity = recv(coordinator, "HELLO")[0]
        coordinator.send_multipart([identity, *p.encode("WELCOME", p.Welcome(heartbeat_seconds=heartbeat,
                                                                             liveness=3))])
        recv(coordinator, "REQUEST")
        task = p.Task(attempt_id="a" * 32, batch_id="b", job_id=0, recipe="", recipe_dir=str(tmp_path), params={},
                      seed=1, frames=1, preview=False, staging=str(tmp_path / "staging"))
        coordinator.send_multipart([identity, *p.encode("TASK", task)])
        before, polls_made = worker.wakeups, CountedPoller.made
        done = recv(coordinator, "DONE")
        during = worker.wakeups - before
        assert p.decode(done[1:])[1].ok
        assert CountedPoller.made == polls_made, "the poller was built again with the same sockets"
        # a heartbeat a second and the child's answer; a short timer would be 4 or more a heartbeat
        assert during <= render_seconds / heartbeat + 3, f"{during} wake-ups in a {render_seconds:g} s render"
    finally:
        worker.stop()
        thread.join(timeout=30)
        context.destroy(linger=0)


def test_stop_wakes_a_sleeping_worker_and_coordinator(tmp_path):
    context = zmq.Context()
    coordinator = Coordinator(tmp_path / "state", *["tcp://127.0.0.1:0"] * 4, context=context, heartbeat=60)
    worker = Worker(coordinator.workers_endpoint, "w0", blender=str(standin(tmp_path, 0)), context=context,
                    work_dir=tmp_path / "w0")
    threads = [threading.Thread(target=coordinator.serve), threading.Thread(target=worker.run)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while worker.wakeups < 2 and time.monotonic() < deadline:  # welcomed (heartbeat 60 s), asleep
            time.sleep(0.05)
        assert worker.heartbeat == 60
        woke = worker.wakeups
        worker.stop()
        coordinator.stop()
        for thread in threads:
            thread.join(timeout=10)  # their next timeouts are 30 s and more away
            assert not thread.is_alive()
        assert worker.wakeups == woke + 1
    finally:
        worker.stop()
        coordinator.stop()
        for thread in threads:
            thread.join(timeout=60)
        context.destroy(linger=0)


class SlowTerminal:
    """A supervisor's stderr that takes its time with each line (a slow terminal, a full log pipe): the reader of
    the child's output falls behind the child."""

    def __init__(self, seconds: float):
        self.buffer, self.seconds = self, seconds

    def write(self, data):
        time.sleep(self.seconds)
        return len(data)

    def flush(self):
        pass


def test_an_attempts_log_holds_all_the_child_printed_before_its_result(tmp_path, monkeypatch):
    """The result of an attempt reaches the supervisor on a socket, ahead of the child's output in its pipe; the
    log sent with it still holds the child's last words (they were once missing under load: an empty log)."""
    monkeypatch.setattr(sys, "stderr", SlowTerminal(0.3))
    context = zmq.Context()
    coordinator = context.socket(zmq.ROUTER)  # the coordinator's side, played by the test
    coordinator.setsockopt(zmq.LINGER, 0)
    port = coordinator.bind_to_random_port("tcp://127.0.0.1")
    worker = Worker(f"tcp://127.0.0.1:{port}", "w0", context=context, work_dir=tmp_path / "w0")  # a real child
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        identity = recv(coordinator, "HELLO", timeout=120)[0]
        coordinator.send_multipart([identity, *p.encode("WELCOME", p.Welcome(heartbeat_seconds=1, liveness=3))])
        recv(coordinator, "REQUEST", timeout=120)
        task = p.Task(attempt_id="a" * 32, batch_id="b", job_id=0, recipe="sensors: 3\n", recipe_dir=str(tmp_path),
                      params={}, seed=1, frames=1, preview=False, staging=str(tmp_path / "staging"))
        coordinator.send_multipart([identity, *p.encode("TASK", task)])
        done = p.decode(recv(coordinator, "DONE", timeout=60)[1:])[1]
        assert not done.ok and done.error
        assert f"task {task.attempt_id} failed" in done.log_tail, done.log_tail
        assert "synthfarm-attempt-end" not in done.log_tail  # the end mark is no part of the log
    finally:
        worker.stop()
        thread.join(timeout=30)
        context.destroy(linger=0)


PIPELINING_CHILD = TASKS + '''    attempt = message["task"]["attempt_id"]
    sys.stdout.buffer.write(b"\\x1esynthfarm-attempt-end " + attempt.encode() + b"\\n")
    sys.stdout.flush()
    sock.send_json({{"rendered": {{"attempt_id": attempt}}}})
    time.sleep(2)  # its files being made durable
    sock.send_json({{"done": {{"attempt_id": attempt, "ok": True, "frames": 1}}}})
'''


def test_a_worker_says_which_of_its_attempts_are_rendered_when_it_asks_for_more(tmp_path):
    """Once its child has rendered an attempt (its files still being made durable), the worker asks for the next
    task at once and says that attempt is rendered: its child is free (the coordinator then leases the last job of
    a batch to it, not NO_TASK for a heartbeat)."""
    blender = tmp_path / "pipelining-blender"
    blender.write_text(PIPELINING_CHILD.format(python=sys.executable))
    blender.chmod(0o755)
    context = zmq.Context()
    coordinator = context.socket(zmq.ROUTER)  # the coordinator's side, played by the test
    coordinator.setsockopt(zmq.LINGER, 0)
    port = coordinator.bind_to_random_port("tcp://127.0.0.1")
    worker = Worker(f"tcp://127.0.0.1:{port}", "w0", blender=str(blender), context=context, work_dir=tmp_path / "w0",
                    ahead=0)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        identity = recv(coordinator, "HELLO")[0]
        coordinator.send_multipart([identity, *p.encode("WELCOME", p.Welcome(heartbeat_seconds=1.0, liveness=3))])
        first = p.decode(recv(coordinator, "REQUEST")[1:])[1]
        assert first.holding == [] and first.rendered == []
        task = p.Task(attempt_id="a" * 32, batch_id="b", job_id=0, recipe="", recipe_dir=str(tmp_path), params={},
                      seed=1, frames=1, preview=False, staging=str(tmp_path / "staging"))
        coordinator.send_multipart([identity, *p.encode("TASK", task)])
        again = p.decode(recv(coordinator, "REQUEST", timeout=1.5)[1:])[1]  # before the DONE, 2 s later
        assert again.holding == [task.attempt_id] and again.rendered == [task.attempt_id] and again.take == 1
        assert p.decode(recv(coordinator, "DONE")[1:])[1].ok
    finally:
        worker.stop()
        thread.join(timeout=30)
        context.destroy(linger=0)
