"""Client requests per second against a real coordinator (in this process, loopback, persistence on): STATUS
through :class:`FarmClient`, interleaved with the floor, the same request on one bare DEALER socket (what
ZeroMQ and the coordinator's answer cost, nothing of the client's). Prints both and their ratio.

    python tests/bench/farm_requests.py [--requests 300] [--rounds 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import zmq

from synthfarm.farm import protocol as p
from synthfarm.farm.client import FarmClient
from synthfarm.farm.coordinator import Coordinator


def rate(ask, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        ask()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    context = zmq.Context()
    with tempfile.TemporaryDirectory(prefix="synthfarm-bench-") as tmp:
        coord = Coordinator(Path(tmp) / "state", *["tcp://127.0.0.1:0"] * 4, context=context, out_root=Path(tmp))
        thread = threading.Thread(target=coord.serve, daemon=True)
        thread.start()
        client = FarmClient(coord.clients_endpoint, context=context)
        floor = context.socket(zmq.DEALER)
        floor.setsockopt(zmq.LINGER, 0)
        floor.connect(coord.clients_endpoint)
        status = p.encode("STATUS", p.BatchRef())

        def bare():
            floor.send_multipart(status)
            assert floor.poll(10_000)
            p.decode(floor.recv_multipart(), {"REPLY"})

        client.status()
        bare()
        ours, floors = [], []
        for _ in range(args.rounds):  # interleaved: the machine's load falls on both alike
            ours.append(rate(client.status, args.requests))
            floors.append(rate(bare, args.requests))
        ours_rate, floor_rate = statistics.median(ours), statistics.median(floors)
        print(f"load average {os.getloadavg()[0]:.1f}; STATUS, median of {args.rounds} rounds of {args.requests}: "
              f"FarmClient {ours_rate:,.0f} requests/s, floor (one bare DEALER) {floor_rate:,.0f} requests/s, "
              f"ratio {ours_rate / floor_rate:.2f}")
        client.close()
        floor.close()
        coord.stop_event.set()
        thread.join(10)
    context.term()


if __name__ == "__main__":
    main()
