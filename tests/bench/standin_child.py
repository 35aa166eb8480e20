"""A stand-in for Blender in benchmarks of the farm's data paths: a worker starts it as its "Blender" (`synthfarm
worker --blender tests/bench/standin_child.py`); it speaks the child's side of the supervisor's PAIR socket and,
for each task, writes one frame's files of fixed sizes (random bytes, made once) into the task's staging folder,
each fsynced (a worker says DONE only once its files are durable: the coordinator renames them without another fsync).

    standin_child.py -b --factory-startup --python worker.py -- ENDPOINT     (the arguments a Blender gets)
Sizes: $SYNTHFARM_STANDIN_FRAME_MB in all (default 2), split like a render's files. $SYNTHFARM_STANDIN_SECONDS: how
long each task "renders" first (default 0), printing a progress line every 0.1 s as Blender does."""
import os
import sys
import time
from pathlib import Path

import zmq

SPLIT = {"images/{s}.png": 0.30, "depth/{s}.exr": 0.25, "normals/{s}.exr": 0.35, "masks/{s}.png": 0.05,
         "semantic/{s}.png": 0.03, "metadata/{s}-meta.json": 0.01, "annotations/{s}-ann.json": 0.01}


def main(endpoint: str) -> None:
    total = float(os.environ.get("SYNTHFARM_STANDIN_FRAME_MB", "2")) * 1e6
    render_seconds = float(os.environ.get("SYNTHFARM_STANDIN_SECONDS", "0"))
    blobs = {name: (b'{"pad": "%s"}' % (b"x" * int(total * share)) if name.endswith(".json")
                    else os.urandom(max(1, int(total * share)))) for name, share in SPLIT.items()}
    sock = zmq.Context.instance().socket(zmq.PAIR)
    sock.connect(endpoint)
    sock.send_json({"ready": True, "pid": os.getpid()})
    while True:
        message = sock.recv_json()
        if message.get("quit"):
            return
        task = message["task"]
        start = time.perf_counter()
        while time.perf_counter() - start < render_seconds:
            print(f"Fra:1 Mem:100M | Rendering | Sample {int((time.perf_counter() - start) * 10)}", flush=True)
            time.sleep(0.1)
        stem = f"{task['job_id']:010}-0000-cam"
        for name, body in blobs.items():
            path = Path(task["staging"]) / name.format(s=stem)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as handle:  # durable before DONE, as the child's writer leaves its files
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
        sock.send_json({"progress": {"attempt_id": task["attempt_id"], "frames_done": 1, "frames_total": 1}})
        sock.send_json({"done": {"attempt_id": task["attempt_id"], "ok": True, "frames": 1,
                                 "seconds": time.perf_counter() - start, "device": "standin"}})


if __name__ == "__main__":
    main(sys.argv[-1])
