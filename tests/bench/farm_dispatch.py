"""Benchmarks of the coordinator alone (no Blender): dispatch rate and a million-job submission.

1. Dispatch: 64 stand-in workers (DEALER sockets, in a process of their own) that finish every task at once
   (each stages its job's frame as a worker on the shared file system does: the coordinator refuses a success
   without its frames, and commits them durably), persistence on (SQLite WAL,
   jobs.jsonl), against the real coordinator; interleaved with the same stand-ins
   against a *floor*: a bare ROUTER loop in the same kind of thread that answers every message with ready-made
   frames (what ZeroMQ and a Python loop cost, nothing of the coordinator's work, one job per message). Prints
   jobs per second, their ratio, and the coordinator's CPU per job (its process's CPU time: on an idle core it
   dispatches 1 / that many jobs per second; target >= 10,000 jobs/s, i.e. <= 100 us of CPU per job; split into
   its loop's thread, the thread removing landed staging folders, and the rest: on Linux). The
   coordinator runs twice per round: stand-ins that ask for one task at a time (depth 0, one job per message),
   and stand-ins leasing ``--ahead`` tasks ahead (REQUEST for 1 + ahead, TASKS back, all results in one RESULTS).
   A worker's files are durable before it says DONE (its writer fsyncs them while the next frame renders): the
   stand-ins write every job's staging folder before the run with the version's own dataset writer (what a
   Blender child leaves there: the folders its frame's files are written into, and those files; no dataset.yaml
   or recipe.yaml, as farm/blender_child.py) and make them durable (one ``sync``), then stage a job's by renaming
   its folder into place, so the figures are the coordinator's and not the stand-ins' fsyncs.
   Each coordinator run is a process of its own; with ``--against DIR`` (another version of synthfarm:
   ``DIR/synthfarm/__init__.py``, e.g. ``git archive main | tar -x -C DIR/synthfarm``) that version's coordinator
   runs interleaved with this one's, against the same stand-ins, and the ratios this / that are printed.
2. Submit 1,000,000 jobs: seconds until the coordinator answers, and its process's peak RSS growth
   (targets: under 30 s, under 500 MB).

    python tests/bench/farm_dispatch.py [--jobs 20000] [--workers 64] [--rounds 3] [--submit 1000000] [--ahead 1 7]
        [--against /tmp/main-export]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import zmq
from against import checked_against

from synthfarm.farm import protocol as p
from synthfarm.farm.client import FarmClient
from synthfarm.farm.coordinator import Coordinator

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "tests" / "data" / "tiny.yaml"


def standins(endpoint: str, workers: int, jobs: int, results, take: int = 1, pool: str = "") -> None:
    """``workers`` stand-in workers in this process: each asks for ``take`` tasks, takes what comes, says they are
    done (one DONE, or one RESULTS for several), asks again. ``pool``: a folder for the jobs' files, written and
    made durable before the first HELLO (on the dataset's file system)."""
    files = prepare(pool, jobs) if pool else {}  # job id -> its staging folder
    context = zmq.Context()
    poller, socks = zmq.Poller(), []
    for i in range(workers):
        s = context.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.ROUTING_ID, f"standin-{i}".encode())
        s.connect(endpoint)
        s.send_multipart(p.encode("HELLO", p.Hello(worker_id=f"standin-{i}")))
        poller.register(s, zmq.POLLIN)
        socks.append(s)
    request = {s: p.encode("REQUEST", p.Request(worker_id=s.getsockopt(zmq.ROUTING_ID).decode(), take=take))
               for s in socks}
    done, first = 0, None
    while done < jobs:
        for s, _ in poller.poll(5000):
            kind, body = s.recv_multipart()[1:]
            if kind in (b"WELCOME", b"NO_TASK"):
                s.send_multipart(request[s])
            elif kind == b"TASK":
                first = first or time.perf_counter()
                task = p.Task.model_validate_json(body)
                stage(task, files)
                s.send_multipart(p.encode("DONE", p.Done(attempt_id=task.attempt_id, ok=True, frames=1)))
                s.send_multipart(request[s])
                done += 1
            elif kind == b"TASKS":
                first = first or time.perf_counter()
                tasks = p.Tasks.model_validate_json(body).tasks
                for task in tasks:
                    stage(task, files)
                s.send_multipart(p.encode("RESULTS", p.Results(results=[
                    p.Done(attempt_id=t.attempt_id, ok=True, frames=1) for t in tasks])))
                s.send_multipart(request[s])
                done += len(tasks)
    results.put(time.perf_counter() - first)
    context.destroy(linger=0)


def prepare(pool: str, jobs: int) -> dict[int, str]:
    """Every job's staging folder in ``pool``, as a Blender child leaves it: one written by the version's own dataset
    writer (as farm/blender_child.py: the frame's files only, no ``open``, so no dataset.yaml or recipe.yaml: a tiny
    image, depth, instance mask, metadata and annotation; tiny.yaml has one frame of one camera), linked for every
    job under the job's frame
    names (the same folders and files), all made durable with one sync (not an fsync each: those are the worker's, not
    the coordinator's): {job id: folder}."""
    import numpy as np

    from synthfarm.addon.core.dataset.native import DatasetWriter, FrameFiles

    template = os.path.join(pool, "template")
    writer = DatasetWriter(Path(template))
    writer.write_frames([FrameFiles(0, 0, "cam", image_png=b"\x89PNG\r\n\x1a\n", depth=np.full((6, 8), 2.5, np.float32),
                                    instance_mask=np.arange(48, dtype=np.uint16).reshape(6, 8),
                                    metadata={"seed": 0}, annotation={"objects": []})])
    walked = [(os.path.relpath(folder, template), names) for folder, _, names in os.walk(template)]
    folders = {}
    for job in range(jobs):  # the template's folders (an empty one too), its files linked under the job's names
        folders[job] = os.path.join(pool, str(job))
        for folder, _ in walked:
            os.makedirs(os.path.join(folders[job], folder), exist_ok=True)
        for folder, name in ((folder, name) for folder, names in walked for name in names):
            os.link(os.path.join(template, folder, name),
                    os.path.join(folders[job], folder, name.replace(f"{0:010d}-", f"{job:010d}-")))
    os.sync()
    return folders


def stage(task: p.Task, folders: dict[int, str]) -> None:
    """The task's staging folder, on the shared file system: its job's durable folder of the pool renamed in (as
    a worker's writer leaves it: its files fsynced, under their names)."""
    if task.staging == "/nonexistent":  # the floor's
        return
    os.makedirs(os.path.dirname(task.staging), exist_ok=True)
    os.rename(folders.pop(task.job_id), task.staging)


def floor_server(sock: zmq.Socket, jobs: int, stop: threading.Event) -> None:
    """The floor: a ROUTER that answers HELLO and REQUEST with ready-made frames and counts DONEs."""
    welcome = p.encode("WELCOME", p.Welcome(heartbeat_seconds=1.0, liveness=3))
    task = p.encode("TASK", p.Task(attempt_id="a" * 32, batch_id="bench", job_id=0, recipe=RECIPE.read_text(),
                                   recipe_dir=str(RECIPE.parent), params={}, seed=1, frames=1, preview=False,
                                   staging="/nonexistent"))
    done = 0
    while done < jobs and not stop.is_set():
        if not sock.poll(200):
            continue
        identity, _, kind, _ = sock.recv_multipart()
        if kind in (b"HELLO", b"REQUEST"):
            sock.send_multipart([identity, *(welcome if kind == b"HELLO" else task)])
        elif kind == b"DONE":
            done += 1


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def thread_cpu(thread: threading.Thread | None) -> float:
    """CPU seconds of a live thread of this process so far (Linux: /proc; 0 elsewhere, or for no thread)."""
    try:
        with open(f"/proc/self/task/{thread.native_id}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except (AttributeError, OSError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime, in clock ticks


def run_standins(endpoint: str, workers: int, jobs: int, take: int = 1, pool: str = "") -> multiprocessing.Process:
    results = multiprocessing.get_context("spawn").Queue()
    proc = multiprocessing.get_context("spawn").Process(target=standins, args=(endpoint, workers, jobs, results, take,
                                                                                pool))
    proc.start()
    return proc, results


def dispatch_floor(jobs: int, workers: int) -> tuple[float, float]:
    """(jobs per second, CPU seconds per job) of the floor."""
    context = zmq.Context()
    sock = context.socket(zmq.ROUTER)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    stop = threading.Event()
    thread = threading.Thread(target=floor_server, args=(sock, jobs, stop))
    cpu = cpu_seconds()
    thread.start()
    proc, results = run_standins(f"tcp://127.0.0.1:{port}", workers, jobs)
    seconds = results.get(timeout=600)
    thread.join()
    cpu = cpu_seconds() - cpu
    proc.join()
    stop.set()
    context.destroy(linger=0)
    return jobs / seconds, cpu / jobs


def start(tmp: Path):
    context = zmq.Context()
    coord = Coordinator(tmp / "state", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0",
                        "tcp://127.0.0.1:0",
                        context=context, heartbeat=1.0, out_root=tmp, shared_roots=(RECIPE.parent,))
    thread = threading.Thread(target=coord.serve, daemon=True)
    thread.start()
    return context, coord, thread, FarmClient(coord.clients_endpoint, timeout=600, context=context)


def dispatch(jobs: int, workers: int, ahead: int = 0) -> tuple[float, float, int, float, float]:
    """(jobs per second, CPU seconds per job, jobs.jsonl lines, of that CPU the loop's and the staging remover's
    thread's) of the coordinator, the stand-ins leasing ``ahead`` tasks ahead."""
    tmp = Path(tempfile.mkdtemp(prefix="synthfarm-bench-"))
    context, coord, thread, client = start(tmp)
    client.submit(batch_id="bench", recipe=RECIPE.read_text(), recipe_dir=str(RECIPE.parent), out=str(tmp / "out"),
                  count=jobs)
    cpu, loop = cpu_seconds(), thread_cpu(thread)
    proc, results = run_standins(coord.workers_endpoint, workers, jobs, 1 + ahead, str(tmp / "pool"))
    seconds = results.get(timeout=600)
    waited = time.perf_counter()
    while client.status("bench")["jobs"]["done"] < jobs:  # committed, not only answered
        time.sleep(0.002)
    seconds += time.perf_counter() - waited
    loop, remover = thread_cpu(thread) - loop, thread_cpu(getattr(getattr(coord, "landing", None), "_remover", None))
    proc.join()
    lines = (tmp / "out" / "jobs.jsonl").read_text().count("\n")
    coord.stop_event.set()
    thread.join()  # and what it left to do after the jobs were done (removing staging folders)
    cpu = cpu_seconds() - cpu
    context.destroy(linger=0)
    shutil.rmtree(tmp, ignore_errors=True)
    return jobs / seconds, cpu / jobs, lines, loop / jobs, remover / jobs


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


def coordinator_run(version: Path | None, jobs: int, workers: int, ahead: int) -> tuple:
    """``dispatch`` in a process of its own, with the coordinator of ``version`` (None: this one)."""
    env = dict(os.environ)
    if version is not None:
        env["PYTHONPATH"] = str(version)
    done = subprocess.run([sys.executable, __file__, "--json", "--jobs", str(jobs), "--workers", str(workers),
                           "--ahead", str(ahead)], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"the bench failed ({version or 'this version'}):\n{done.stderr[-3000:]}")
    return tuple(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--submit", type=int, default=1000000)
    parser.add_argument("--ahead", type=int, nargs="+", default=[1],
                        help="tasks the stand-ins lease ahead (each compared with 0)")
    parser.add_argument("--against", type=Path, help="another version of synthfarm to interleave with (DIR/synthfarm)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one coordinator run, as JSON
    args = parser.parse_args()
    if args.json:
        print(json.dumps(dispatch(args.jobs, args.workers, args.ahead[0])))
        return
    args.against = checked_against(parser, args.against)
    if args.submit:
        submit(args.submit)  # first, so that the process's peak RSS is the submission's
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    versions = {"this": None, **({"that": args.against} if args.against else {})}
    depths = sorted({0, *args.ahead})
    floor, runs = [], {(name, ahead): [] for name in versions for ahead in depths}
    for _ in range(args.rounds):  # interleaved: the machine's load falls on all alike
        floor.append(dispatch_floor(args.jobs, args.workers))
        for name, ahead in runs:
            runs[name, ahead].append(coordinator_run(versions[name], args.jobs, args.workers, ahead))
    f_rate, f_cpu = statistics.median(r for r, _ in floor), statistics.median(c for _, c in floor)
    print(f"dispatch, {args.jobs} jobs, {args.workers} stand-in workers, median of {args.rounds} interleaved rounds:")
    print(f"  floor (a bare ROUTER answering with ready frames): {f_rate:,.0f} jobs/s, {f_cpu * 1e6:.0f} us CPU/job")
    medians = {}
    for (name, ahead), coord in runs.items():
        c_rate, c_cpu = statistics.median(r[0] for r in coord), statistics.median(r[1] for r in coord)
        loop, remover = statistics.median(r[3] for r in coord), statistics.median(r[4] for r in coord)
        medians[name, ahead] = c_rate, c_cpu
        lines = {r[2] for r in coord}
        print(f"  {name + ' ' if args.against else ''}coordinator, lease depth {ahead} ({1 + ahead} tasks per REQUEST; "
              f"persistence on): {c_rate:,.0f} jobs/s, {c_cpu * 1e6:.0f} us CPU/job (= {1 / c_cpu:,.0f} jobs per "
              f"CPU-second; target >= 10,000); jobs.jsonl lines {sorted(lines)}")
        print(f"    of which the loop's thread {loop * 1e6:.0f} us, the staging remover's {remover * 1e6:.0f} us, "
              f"the rest (ZeroMQ's I/O threads, the bench's status polls, the stop) "
              f"{(c_cpu - loop - remover) * 1e6:.0f} us")
        print(f"    ratio to the floor: {c_rate / f_rate:.2f} (rate), {c_cpu / f_cpu:.2f} (CPU per job)")
    if args.against:
        for ahead in depths:
            (rate, cpu), (rate0, cpu0) = medians["this", ahead], medians["that", ahead]
            print(f"  this / that, lease depth {ahead}: {rate / rate0:.2f}x the rate, {cpu / cpu0:.2f}x the CPU per job")


if __name__ == "__main__":
    main()
