"""Benchmark: one coordinator moving a 1,000-frame batch on loopback, through its transfer socket and through
object storage (moto's S3 server in a process of its own), with the real coordinator and worker processes and
a stand-in for Blender that writes a render's files of fixed sizes (tests/bench/standin_child.py).

Prints, for each mode: wall seconds, MB/s of frame data, the coordinator's CPU seconds per 1,000 results (and
the S3 server's, for object storage), and the ratio of object storage to the socket measured in the same run.

    python tests/bench/farm_storage.py [--frames 1000] [--frame-mb 2] [--workers 4]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))

from farm_procs import free_ports  # noqa: E402
from s3_server import S3Server  # noqa: E402
from synthfarm.farm.client import FarmClient  # noqa: E402

RECIPE = ROOT / "tests" / "data" / "tiny.yaml"


def cli(*args, env=None):
    return subprocess.Popen([sys.executable, "-m", "synthfarm.cli", *map(str, args)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(mode: str, frames: int, workers: int, frame_mb: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"synthfarm-bench-{mode}-"))
    s3 = S3Server() if mode == "s3" else None
    env = {**(s3.environ() if s3 else os.environ), "SYNTHFARM_STANDIN_FRAME_MB": str(frame_mb)}
    if s3:
        s3.bucket("bench")
    blender = tmp / "standin-blender"
    blender.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).with_name('standin_child.py')} \"$@\"\n")
    blender.chmod(0o755)
    port = free_ports(4)
    coordinator = cli("coordinator", "--port", port, "--data", tmp / "state", "--out-root", tmp / "datasets",
                      env=env)
    procs = [cli("worker", "--connect", f"tcp://127.0.0.1:{port}", "--name", f"w{i}", "--blender", blender,
                 "--work-dir", tmp / f"w{i}", env=env) for i in range(workers)]
    client = FarmClient(f"tcp://127.0.0.1:{port + 1}", timeout=30)
    out = "s3://bench/frames" if s3 else "frames"
    try:
        while len(client_workers(client)) < workers:
            time.sleep(0.2)
        submitted = subprocess.run([sys.executable, "-m", "synthfarm.cli", "submit", str(RECIPE), "--jobs", str(frames),
                                    "--out", out, "--connect", f"tcp://127.0.0.1:{port + 1}", "--batch-id", "bench"],
                                   env=env, capture_output=True, text=True, check=True)
        assert submitted.stdout.strip() == "bench", submitted.stderr
        coord = psutil.Process(coordinator.pid)
        server = psutil.Process(s3.proc.pid) if s3 else None
        cpu0, server0, t0 = sum(coord.cpu_times()[:2]), sum(server.cpu_times()[:2]) if server else 0, time.perf_counter()
        while client.status("bench")["jobs"]["done"] < frames:
            time.sleep(0.1)
        seconds = time.perf_counter() - t0
        cpu = sum(coord.cpu_times()[:2]) - cpu0
        server_cpu = sum(server.cpu_times()[:2]) - server0 if server else 0.0
    finally:
        for proc in [*procs, coordinator]:
            proc.terminate()
        for proc in [*procs, coordinator]:
            proc.wait(timeout=60)
        if s3:
            s3.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    mb = frames * frame_mb
    return {"mode": mode, "seconds": seconds, "mb_per_s": mb / seconds, "cpu_per_1000": cpu * 1000 / frames,
            "server_cpu_per_1000": server_cpu * 1000 / frames}


def client_workers(client):
    try:
        return [w for w in client.workers() if w["status"] in ("idle", "busy")]
    except Exception:  # the coordinator is still starting
        return []


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--frame-mb", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    results = {mode: run(mode, args.frames, args.workers, args.frame_mb) for mode in ("socket", "s3")}
    for r in results.values():
        line = (f"{r['mode']:>6}: {args.frames} frames of {args.frame_mb:g} MB, {args.workers} workers: "
                f"{r['seconds']:.1f} s, {r['mb_per_s']:.0f} MB/s; coordinator CPU {r['cpu_per_1000']:.1f} s per 1,000 "
                "results")
        if r["mode"] == "s3":
            line += f"; S3 server CPU {r['server_cpu_per_1000']:.1f} s per 1,000"
        print(line)
    s, o = results["socket"], results["s3"]
    print(f"object storage / socket: throughput x{o['mb_per_s'] / s['mb_per_s']:.2f}, coordinator CPU per result "
          f"x{o['cpu_per_1000'] / max(s['cpu_per_1000'], 1e-9):.2f}")
