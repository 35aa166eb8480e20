"""Benchmark: what the farm's own processes burn while Blender renders (target: the supervisor < 0.5 % of a core).

A stand-in for Blender (tests/bench/standin_child.py) "renders" each job for a few seconds, printing a progress
line every 0.1 s as Blender does, and writes tiny frames. Two set-ups:
1. ``synthfarm worker`` (the supervisor) in a process of its own, with ``synthfarm coordinator`` in another;
2. the embedded farm of ``synthfarm render`` (coordinator, worker and the command's status polling in one process).
CPU time is read from /proc/PID/task/*/schedstat (nanoseconds, every thread; children excluded) in 1-second
intervals while the child renders; the median interval is printed as a fraction of a core. Baseline in the same
run: the stand-in child itself over the same intervals (a process that sleeps and prints).

    python tests/bench/farm_supervisor.py [--jobs 3] [--render-seconds 6]
"""
from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))

import farm_procs  # noqa: E402
from synthfarm.farm import embedded  # noqa: E402
from synthfarm.farm.client import FarmClient  # noqa: E402

RECIPE = ROOT / "tests" / "data" / "tiny.yaml"


def cli(*args, env=None):
    return farm_procs.cli(*args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of a process, in nanoseconds."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError):  # a thread that just ended
            pass
    return total


def standin(tmp: Path) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    blender = tmp / "standin-blender"
    blender.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).with_name('standin_child.py')} \"$@\"\n")
    blender.chmod(0o755)
    return blender


def sample(pid: int, done: threading.Event) -> list[tuple[float, float]]:
    """(process CPU, its Blender child's CPU) fractions of a core per second while the child exists."""
    rates = []
    supervisor = psutil.Process(pid)
    while not done.is_set():
        children = supervisor.children()
        if not children:
            time.sleep(0.05)
            continue
        child = children[0].pid
        try:
            a, b, t = cpu_ns(pid), cpu_ns(child), time.perf_counter()
            time.sleep(1.0)
            a, b, t = cpu_ns(pid) - a, cpu_ns(child) - b, time.perf_counter() - t
        except (OSError, psutil.Error):
            continue
        rates.append((a / 1e9 / t, b / 1e9 / t))
    return rates


def standalone(jobs: int, tmp: Path, env: dict) -> list[tuple[float, float]]:
    port, blender = farm_procs.free_ports(4), standin(tmp)
    coordinator = cli("coordinator", "--port", port, "--data", tmp / "state", "--out-root", tmp / "datasets", env=env)
    worker = cli("worker", "--connect", f"tcp://127.0.0.1:{port}", "--name", "w0", "--blender", blender,
                 "--work-dir", tmp / "w0", env=env)
    client = FarmClient(f"tcp://127.0.0.1:{port + 1}", timeout=30)
    done = threading.Event()
    try:
        while not psutil.Process(worker.pid).children():
            time.sleep(0.1)
        subprocess.run([sys.executable, "-m", "synthfarm.cli", "submit", str(RECIPE), "--jobs", str(jobs),
                        "--out", "frames", "--connect", f"tcp://127.0.0.1:{port + 1}", "--batch-id", "bench"],
                       env=env, capture_output=True, check=True)
        result: list = []
        thread = threading.Thread(target=lambda: result.extend(sample(worker.pid, done)))
        thread.start()
        while client.status("bench")["jobs"]["done"] < jobs:
            time.sleep(0.5)
        done.set()
        thread.join()
        return result
    finally:
        for proc in (worker, coordinator):
            proc.terminate()
        for proc in (worker, coordinator):
            proc.wait(timeout=60)


def embedded_farm(jobs: int, tmp: Path) -> list[tuple[float, float]]:
    embedded.Worker = functools.partial(embedded.Worker, blender=str(standin(tmp)))  # Blender -> the stand-in
    done = threading.Event()
    result: list = []
    thread = threading.Thread(target=lambda: result.extend(sample(os.getpid(), done)))
    thread.start()
    try:
        embedded.render_on_farm(RECIPE, jobs, tmp / "out", device="cpu")
    finally:
        done.set()
        thread.join()
    return result[:-1]  # the last interval holds the farm's stop


def report(name: str, rates: list[tuple[float, float]]) -> None:
    ours, child = statistics.median(r for r, _ in rates), statistics.median(c for _, c in rates)
    print(f"{name}: {ours:.3%} of a core (median of {len(rates)} 1-s intervals while the child renders; target "
          f"< 0.5 %); baseline, the stand-in child: {child:.3%}; ratio {ours / max(child, 1e-12):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--render-seconds", type=float, default=6.0)
    args = parser.parse_args()
    os.environ.update(SYNTHFARM_STANDIN_FRAME_MB="0.01", SYNTHFARM_STANDIN_SECONDS=str(args.render_seconds))
    tmp = Path(tempfile.mkdtemp(prefix="synthfarm-bench-supervisor-"))
    try:
        alone = standalone(args.jobs, tmp / "standalone", dict(os.environ))
        inside = embedded_farm(args.jobs, tmp / "embedded")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    report("synthfarm worker (the supervisor alone)", alone)
    report("synthfarm render's process (embedded coordinator + worker + status polls)", inside)


if __name__ == "__main__":
    main()
