"""Benchmarks of the coordinator alone (no Blender): dispatch rate and a million-job submission.

1. Dispatch: 64 stand-in workers (DEALER sockets in one thread) that finish every task at once, 20,000
   jobs, persistence on (SQLite WAL, jobs.jsonl). Prints jobs per second (target >= 5,000/s; OpenCue's
   published scheduler test books about 975 frames/s).
2. Submit 1,000,000 jobs: seconds until the coordinator answers, and its process's peak RSS growth
   (targets: under 30 s, under 500 MB).

    python tests/bench/farm_dispatch.py [--jobs 20000] [--workers 64] [--submit 1000000]
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import threading
import time
from pathlib import Path

import zmq

from synthfarm.farm import protocol as p
from synthfarm.farm.client import FarmClient
from synthfarm.farm.coordinator import Coordinator

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "tests" / "data" / "tiny.yaml"


def start(tmp: Path):
    context = zmq.Context()
    coord = Coordinator(tmp / "state", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0",
                                       "tcp://127.0.0.1:0",
                        context=context, heartbeat=1.0, out_root=tmp, shared_roots=(RECIPE.parent,))
    thread = threading.Thread(target=coord.serve, daemon=True)
    thread.start()
    return context, coord, thread, FarmClient(coord.clients_endpoint, timeout=600, context=context)


def dispatch(jobs: int, workers: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="synthfarm-bench-"))
    context, coord, thread, client = start(tmp)
    client.submit(batch_id="bench", recipe=RECIPE.read_text(), recipe_dir=str(RECIPE.parent), out=str(tmp / "out"),
                  count=jobs)
    socks = []
    poller = zmq.Poller()
    for i in range(workers):
        s = context.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.ROUTING_ID, f"standin-{i}".encode())
        s.connect(coord.workers_endpoint)
        s.send_multipart(p.encode("HELLO", p.Hello(worker_id=f"standin-{i}")))
        poller.register(s, zmq.POLLIN)
        socks.append(s)
    done = 0
    start_time = None
    while done < jobs:
        for s, _ in poller.poll(1000):
            kind, msg = p.decode(s.recv_multipart())
            name = s.getsockopt(zmq.ROUTING_ID).decode()
            if kind == "WELCOME" or kind == "NO_TASK":
                start_time = start_time or time.perf_counter()
                s.send_multipart(p.encode("REQUEST", p.Request(worker_id=name)))
            elif kind == "TASK":
                s.send_multipart(p.encode("DONE", p.Done(attempt_id=msg.attempt_id, ok=True)))
                s.send_multipart(p.encode("REQUEST", p.Request(worker_id=name)))
                done += 1
    while client.status("bench")["jobs"]["done"] < jobs:
        time.sleep(0.01)
    seconds = time.perf_counter() - start_time
    lines = (tmp / "out" / "jobs.jsonl").read_text().count("\n")
    print(f"dispatch: {jobs} jobs, {workers} stand-in workers: {seconds:.2f} s, {jobs / seconds:,.0f} jobs/s "
          f"(target >= 5,000/s); jobs.jsonl lines {lines}")
    coord.stop_event.set()
    thread.join()
    context.destroy(linger=0)


def submit(count: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="synthfarm-bench-"))
    context, coord, thread, client = start(tmp)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    data = client.submit(batch_id="big", recipe=RECIPE.read_text(), recipe_dir=str(RECIPE.parent),
                         out=str(tmp / "out"), count=count)
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"submit: {count:,} jobs in {seconds:.1f} s (target < 30 s); queued {data['jobs']['queued']:,}; "
          f"peak RSS {peak:.0f} MB (grew {peak - before:.0f} MB during the submission; target < 500 MB)")
    coord.stop_event.set()
    thread.join()
    context.destroy(linger=0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--submit", type=int, default=1000000)
    args = parser.parse_args()
    submit(args.submit)  # first, so that the process's peak RSS is the submission's
    dispatch(args.jobs, args.workers)
