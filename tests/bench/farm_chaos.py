"""Chaos against a live farm on loopback: a coordinator and workers as processes (real Blender children),
rendering one batch while they are killed, stopped and flooded and while hostile clients send bad submits
and forged uploads. Bounded in count and time; every address is 127.0.0.1.

At the end it prints frames expected / present / duplicated / lost, how often the coordinator ended without
being told to (it must be 0), and the share of status probes it answered.

    python tests/bench/farm_chaos.py [--seconds 180] [--jobs 60] [--workers 3] [--seed 1]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil
import zmq

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))
from farm_procs import Farm, raw_request  # noqa: E402
from synthfarm.farm import protocol as p  # noqa: E402
from synthfarm.farm.transfer import VERSION, transfer_socket  # noqa: E402

TINY = ROOT / "tests" / "data" / "tiny.yaml"
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8))


def bad_submits(tmp: Path) -> list[dict]:
    base = {"batch_id": "evil", "recipe": TINY.read_text(), "recipe_dir": str(TINY.parent), "out": "evil", "count": 1}
    return [{**base, **change} for change in (
        {"out": "/proc/self/x"}, {"out": "../../.."}, {"out": "n" * 300}, {"seed": 2 ** 64}, {"seed": 10 ** 30},
        {"params": {"radius": 10 ** 400}}, {"inputs": {"a": "not-a-hash"}, "recipe_path": "a"},
        {"recipe": BOMB + TINY.read_text()}, {"count": 10 ** 12}, {"recipe": "{"}, {"recipe_dir": "/etc"},
        {"out": str(tmp / "state")})]


class Chaos:
    def __init__(self, tmp: Path, jobs: int, workers: int, rng: random.Random):
        self.tmp, self.jobs, self.rng = tmp, jobs, rng
        self.farm = Farm(tmp, workers=workers)
        self.events: Counter = Counter()
        self.unexpected_exits = 0
        self.probes = Counter()
        self.context = zmq.Context.instance()

    def coordinator_alive(self) -> bool:
        if self.farm.coordinator.poll() is not None:
            self.unexpected_exits += 1
            self.farm.coordinator = self.farm.start_coordinator()
            return False
        return True

    def probe(self) -> None:
        self.coordinator_alive()
        try:
            self.farm.client.status("batch")
            self.probes["answered"] += 1
        except Exception:
            self.probes["missed"] += 1

    # -- the faults --
    def kill_worker(self):
        i = self.rng.randrange(len(self.farm.workers))
        self.farm.workers[i].kill()
        self.farm.workers[i].wait()
        time.sleep(self.rng.uniform(0.2, 2))
        self.farm.workers[i] = self.farm.start_worker(f"w{i}")

    def stop_worker(self):
        proc = self.farm.workers[self.rng.randrange(len(self.farm.workers))]
        if proc.poll() is None:
            proc.send_signal(signal.SIGSTOP)
            time.sleep(self.rng.uniform(1, 6))
            proc.send_signal(signal.SIGCONT)

    def kill_child(self):
        proc = self.farm.workers[self.rng.randrange(len(self.farm.workers))]
        try:
            for child in psutil.Process(proc.pid).children():
                child.kill()
        except psutil.Error:
            pass

    def restart_coordinator(self):
        self.farm.coordinator.send_signal(self.rng.choice([signal.SIGKILL, signal.SIGTERM]))
        self.farm.coordinator.wait()
        time.sleep(self.rng.uniform(0.2, 2))
        self.farm.coordinator = self.farm.start_coordinator()

    def flood(self):
        for port in (self.farm.port, self.farm.port + 1, self.farm.port + 3):
            sock = self.context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM, 10_000)
            sock.connect(f"tcp://127.0.0.1:{port}")
            for _ in range(2000):
                junk = self.rng.choice([[os.urandom(self.rng.randrange(1, 200))],
                                        [p.VERSION, b"HELLO", os.urandom(50)],
                                        [p.VERSION, b"DONE", b'{"attempt_id": "x", "ok": true}'],
                                        [VERSION, b"GET_OUTPUT", b'{"batch_id": "batch", "path": "../../etc/passwd"}',
                                         b""]])
                try:
                    sock.send_multipart(junk, zmq.NOBLOCK)
                except zmq.Again:
                    break
            sock.close()

    def bad_submit(self):
        body = self.rng.choice(bad_submits(self.tmp))
        try:
            reply = raw_request(self.farm.client.endpoint, "SUBMIT", body, timeout=15)
            self.events["bad submit refused" if not reply["ok"] else "bad submit ACCEPTED"] += 1
        except AssertionError:
            self.events["bad submit unanswered"] += 1

    def forged_upload(self):
        sock = transfer_socket(self.context, f"tcp://127.0.0.1:{self.farm.port + 3}",
                               identity=f"w{self.rng.randrange(len(self.farm.workers))}".encode())
        header = {"attempt_id": os.urandom(16).hex(), "path": f"images/{self.rng.randrange(10 ** 9):010d}-0000-cam.png",
                  "offset": 0, "size": 3}
        sock.send_multipart([VERSION, b"PUT_OUTPUT", json.dumps(header).encode(), b"png"])
        if sock.poll(5000):
            kind = sock.recv_multipart()[1]
            self.events["forged upload refused" if kind == b"ERROR" else "forged upload ACCEPTED"] += 1
        sock.close()

    def run(self, seconds: float) -> None:
        recipe = self.tmp / "chaos.yaml"  # in the run's temporary folder (a shared root of the farm), never in the
        recipe.write_text(TINY.read_text())  # checkout: tiny.yaml names no file, so it may live anywhere
        try:
            self._run(recipe, seconds)
            self.report(seconds)
        finally:
            self.farm.stop()

    def _run(self, recipe: Path, seconds: float) -> None:
        while True:  # the coordinator is starting
            try:
                self.farm.submit(recipe, self.jobs, self.tmp / "out")
                break
            except Exception:
                time.sleep(0.5)
        faults = [self.kill_worker, self.stop_worker, self.kill_child, self.restart_coordinator, self.flood,
                  self.bad_submit, self.forged_upload]
        start = time.time()
        while time.time() - start < seconds:
            fault = self.rng.choice(faults)
            fault()
            self.events[fault.__name__] += 1
            for _ in range(self.rng.randrange(2, 8)):
                self.probe()
                time.sleep(0.5)
        deadline = time.time() + 600  # then let it finish, bounded
        while time.time() < deadline:
            self.probe()
            try:
                status = self.farm.client.status("batch")
                if status["jobs"]["queued"] + status["jobs"]["running"] == 0:
                    break
            except Exception:
                pass
            time.sleep(1)

    def report(self, seconds: float) -> None:
        out = self.tmp / "out"
        status = self.farm.client.status("batch") if self.farm.coordinator.poll() is None else {}
        present = {p.name[:10] for p in (out / "annotations").glob("*-ann.json")}
        lines = [json.loads(line) for line in (out / "jobs.jsonl").read_text().splitlines() if line.strip()]
        done = Counter(r["id"] for r in lines if r.get("status") == "done")
        print(f"chaos for {seconds:.0f} s: " + ", ".join(f"{k} {v}" for k, v in sorted(self.events.items())))
        print(f"frames expected {self.jobs}, present {len(present)}, duplicated {sum(n > 1 for n in done.values())} "
              f"(jobs.jsonl lines of one job), lost {self.jobs - len(present)}")
        print(f"coordinator: restarted by the chaos {self.events['restart_coordinator']} times, ended on its own "
              f"{self.unexpected_exits} times; status probes answered {self.probes['answered']}/"
              f"{sum(self.probes.values())}")
        if status:
            print(f"batch: {status['jobs']}; {status['reason']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="synthfarm-chaos-") as tmp:
        chaos = Chaos(Path(tmp), args.jobs, args.workers, random.Random(args.seed))
        chaos.run(args.seconds)


if __name__ == "__main__":
    main()
