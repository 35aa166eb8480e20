"""Benchmark: labels for 50 objects at 640x480 (target: under 20 ms per frame).

Renders the toybox recipe with 49 toys plus the box (1 sample: the render is not what is measured), in process,
and reads each frame's ``timings.labels`` from its metadata (wall time): visible masks, boxes and RLE, amodal
rasterisation, visibility, truncation, pose, 3D boxes and keypoints of every object, and the semantic mask. The
wall time also carries what the writer thread and other processes take from this one (GIL, cores), so the CPU
time of the labelling thread is printed beside it, all of ``frame_labels`` and its parts (``time.thread_time``
around each call): geometry labels, models, the meshes' triangles, visible masks, keypoints. Also times the
visible-mask part alone on the written masks and, as the baseline in the same run, one full-image comparison per
object (what a per-object loop over the mask costs at least). The load average is printed with every figure.

With ``--against DIR`` (a copy of another version of synthfarm: ``DIR/synthfarm/__init__.py``, e.g. made with
``git archive main | tar -x -C DIR/synthfarm``), that version's runs are interleaved with this one's, round by
round, each in a process of its own, and the ratios this / that are printed. The mean over all frames carries a new
process's first job (its models worked out, its arrays grown): ``frame_labels`` after it is printed too (a warm
worker).

    python tests/bench/groundtruth.py [--jobs 5] [--against /tmp/main-export] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections import defaultdict
from pathlib import Path

from against import checked_against

# the labelling thread's CPU time is measured around these (module, attribute, figure's name)
PARTS = [("engine.runner", "frame_labels", "frame_labels (all)"),
         ("engine.labels", "geometry_labels_many", "geometry labels"),
         ("engine.labels", "GeometryCache.model", "models"),  # before model_keys
         ("engine.labels", "GeometryCache.model_keys", "models"),
         ("engine.labels", "GeometryCache.local_triangles", "mesh triangles"),  # before meshes
         ("engine.labels", "GeometryCache.local_mesh", "mesh triangles"),
         ("engine.labels", "instances_from_mask", "visible masks"),
         ("engine.labels", "world_keypoints", "keypoints")]


def measure(jobs: int) -> dict:
    """Render ``jobs`` one-frame jobs in this process; the figures per frame (ms) and the load average."""
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="synthfarm-bench-"))
    import importlib

    import numpy as np
    import yaml

    import synthfarm
    from synthfarm.addon.core.dataset.native import read_png
    from synthfarm.addon.core.groundtruth import instances_from_mask
    from synthfarm.addon.core.recipe import load_recipe

    cpu: dict[str, list[float]] = defaultdict(list)
    for module, attribute, name in PARTS:
        owner = importlib.import_module(f"synthfarm.addon.{module}")
        *path, function = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        if hasattr(owner, function):  # an older version may lack a part
            setattr(owner, function, _timed(getattr(owner, function), cpu[name]))
    recipe_path = Path(synthfarm.__file__).parent / "assets/recipes/toybox.yaml"
    data = load_recipe(recipe_path).to_data()
    data["parameters"]["num_toys"]["max"] = 49
    data["sensors"][0]["samples"] = 1
    patched = recipe_path.parent / f".bench-{os.getpid()}.yaml"  # beside it: relative paths hold
    patched.write_text(yaml.safe_dump(data))
    out = Path(tempfile.mkdtemp(prefix="synthfarm-bench-")) / "out"
    try:
        synthfarm.render(patched, jobs=jobs, out=out, params={"num_toys": 49}, progress=False)
    finally:
        patched.unlink(missing_ok=True)
    load = os.getloadavg()[0]
    labels_ms, mask_ms, base_ms, counts = [], [], [], []
    for meta_path in sorted((out / "metadata").glob("*-meta.json")):
        meta = json.loads(meta_path.read_text())
        labels_ms.append(meta["timings"]["labels"] * 1000)
        stem = meta_path.name.removesuffix("-meta.json")
        ann = json.loads((out / "annotations" / f"{stem}-ann.json").read_text())
        counts.append(len(ann["objects"]))
        index = read_png(out / "masks" / f"{stem}.png").astype(np.int32)
        mask_ms.append(min(timeit.repeat(lambda index=index: instances_from_mask(index, range(1, 51)), number=1,
                                         repeat=5)) * 1000)
        base_ms.append(min(timeit.repeat(lambda index=index: [index == i for i in range(1, 51)], number=1,
                                         repeat=5)) * 1000)
    frames = len(labels_ms)
    return {"version": str(Path(synthfarm.__file__).parent), "frames": frames, "objects": statistics.mean(counts),
            "load": [load, os.getloadavg()[0]], "labels_mean": statistics.mean(labels_ms), "labels_max": max(labels_ms),
            "labels_warm": statistics.mean(labels_ms[1:]) if frames > 1 else None,
            "baseline": statistics.mean(base_ms), "visible_alone": statistics.mean(mask_ms),
            "cpu": {name: sum(cpu[name]) * 1000 / frames for _, _, name in PARTS if cpu[name]},
            # after the first job (one frame each): a warm worker, its models worked out, its arrays grown
            "warm": statistics.mean(cpu[PARTS[0][2]][1:]) * 1000 if len(cpu[PARTS[0][2]]) > 1 else None}


def _timed(function, into: list):
    def timed(*args, **kwargs):
        start = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            into.append(time.thread_time() - start)
    return timed


def report(fig: dict, title: str) -> None:
    base = fig["baseline"]
    print(f"== {title}: {fig['version']}")
    print(f"frames {fig['frames']}, objects per frame {fig['objects']:.0f}, resolution 640x480; load average "
          f"{fig['load'][0]:.1f} (render end) / {fig['load'][1]:.1f} (figures end) on {os.cpu_count()} cores")
    print(f"baseline: one full-image comparison per object (index == id, 50 ids): mean {base:6.1f} ms")
    print(f"all labels per frame (wall): mean {fig['labels_mean']:6.1f} ms, max {fig['labels_max']:6.1f} ms "
          f"({fig['labels_mean'] / base:.2f} x baseline; target < 20 ms)")
    if fig.get("labels_warm") is not None:
        print(f"all labels per frame after the first job (wall, warm): mean {fig['labels_warm']:6.1f} ms")
    for name, ms in fig["cpu"].items():
        print(f"  CPU of the labelling thread, {name + ':':22s} {ms:6.1f} ms per frame ({ms / base:.2f} x baseline)")
    if fig.get("warm") is not None:
        print(f"  CPU of the labelling thread, frame_labels after the first job (warm): {fig['warm']:6.1f} ms per frame")
    print(f"visible masks alone, on the written masks: mean {fig['visible_alone']:6.1f} ms "
          f"({fig['visible_alone'] / base:.2f} x baseline)")


def child(version: Path | None, jobs: int) -> dict:
    env = dict(os.environ)
    if version is not None:
        env["PYTHONPATH"] = str(version)
    done = subprocess.run([sys.executable, __file__, "--jobs", str(jobs), "--json"], env=env, capture_output=True,
                          text=True)
    if done.returncode:
        raise RuntimeError(f"the bench failed ({version or 'this version'}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--against", type=Path, help="another version of synthfarm to interleave with (DIR/synthfarm)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one run, figures as JSON
    args = parser.parse_args()
    if args.json:
        print(json.dumps(measure(args.jobs)))
        return
    if args.against is None:
        report(measure(args.jobs), "this version")
        return
    args.against = checked_against(parser, args.against)
    pairs = []
    for round_ in range(1, args.rounds + 1):
        that, this = child(args.against.resolve(), args.jobs), child(None, args.jobs)
        report(that, f"round {round_}, that version")
        report(this, f"round {round_}, this version")
        pairs.append((that, this))
    print("== this / that, per round (CPU of the labelling thread per frame; the wall time last)")
    for name in pairs[0][1]["cpu"]:
        ratios = [f"{b['cpu'][name] / a['cpu'][name]:.2f}" for a, b in pairs if a["cpu"].get(name)]
        print(f"  {name + ':':22s} {', '.join(ratios)}")
    warm = ", ".join(f"{b['warm'] / a['warm']:.2f}" for a, b in pairs if a.get("warm") and b.get("warm"))
    print(f"  {'frame_labels (warm):':22s} {warm}")
    walls = ", ".join(f"{b['labels_mean'] / a['labels_mean']:.2f}" for a, b in pairs)
    print(f"  {'labels (wall):':22s} {walls}")


if __name__ == "__main__":
    main()
