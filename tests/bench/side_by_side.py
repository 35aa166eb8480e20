"""Benchmark: the same scenes rendered with plain bpy (the physical floor) and with synthfarm, interleaved.

What it does, per tier (``preview``: the recipe's preview tier, 320x240 1 sample for toybox; ``full``: the
recipe's own resolution with ``--samples``):

1. *Capture* (once, not timed): synthfarm renders the jobs in a process of its own, and just before each render
   call saves the scene it is about to render as a .blend (``save_as_mainfile(copy=True)``). Those files are the
   very scenes synthfarm renders again in step 3 (same recipe, same batch seed, same job ids).
2. *Plain bpy*: a fresh Python process imports bpy and, for each .blend, opens it and calls
   ``bpy.ops.render.render()`` (timed: **the floor**), then writes what a plain script would write: the image as
   PNG and every pass in one multilayer EXR (``save_render``; timed apart). It writes no labels and no exports.
3. *synthfarm*: ``synthfarm render RECIPE --jobs N [--preview]``: the embedded farm, one warm worker, every output,
   label and export of the recipe. A job's wall time is the gap between two jobs' "done" lines appearing in the
   dataset's ``jobs.jsonl`` (the moment the farm counts a job done: its files are durable); the first job (cold
   worker) is left out. synthfarm's own render call is read from each frame's metadata (``timings.render``).

Steps 2 and 3 alternate in ``--rounds`` rounds (the order flips each round) so the load of the machine falls on
both alike. Prints medians and the ratios issue 13 asks for: non-render share of a frame's wall time
(1 - render call / job wall; targets <= 25 % preview, <= 5 % full), synthfarm's job wall over plain bpy's, launch
to first image on disk (target < 2.5 s preview), and synthfarm's render call over plain bpy's (~1.0 when the
scenes are the same).

    python tests/bench/side_by_side.py [--jobs 6] [--rounds 2] [--tiers preview full] [--samples 16]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SYNTHFARM = [sys.executable, "-m", "synthfarm.cli"]


# -- step 1: capture the scenes synthfarm renders (runs in a child process) --
def capture(recipe: str, jobs: int, preview: bool, blends: Path) -> None:
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="synthfarm-bench-"))
    import bpy

    import synthfarm
    from synthfarm.addon.engine import render

    original = render.render_frame
    saved = []

    def saving(scene, *args, **kwargs):
        path = blends / f"job-{len(saved):04d}.blend"
        bpy.ops.wm.save_as_mainfile(filepath=str(path), copy=True)
        saved.append(path)
        return original(scene, *args, **kwargs)

    render.render_frame = saving
    synthfarm.render(recipe, jobs=jobs, out=blends / "dataset", preview=preview, device="cpu", progress=False)
    if len(saved) != jobs:
        raise SystemExit(f"captured {len(saved)} scenes for {jobs} jobs: the recipe must render one frame per job")


# -- step 2: plain bpy (runs in a child process; prints one JSON line) --
def plain(blends: Path, out: Path, launched: float) -> None:
    import bpy

    frames = []
    first = None
    for path in sorted(blends.glob("job-*.blend")):
        t_open = time.perf_counter()
        bpy.ops.wm.open_mainfile(filepath=str(path), load_ui=False)
        scene = bpy.context.scene
        t_render = time.perf_counter()
        bpy.ops.render.render()
        t_write = time.perf_counter()
        image = bpy.data.images["Render Result"]
        settings = scene.render.image_settings
        settings.media_type, settings.file_format = "IMAGE", "PNG"  # synthfarm's PNG settings
        settings.color_mode, settings.color_depth, settings.compression = "RGB", "8", 15
        image.save_render(str(out / f"{path.stem}.png"), scene=scene)
        settings.media_type = "MULTI_LAYER_IMAGE"  # before the format (bpy 5.0)
        settings.file_format, settings.color_depth, settings.exr_codec = "OPEN_EXR_MULTILAYER", "32", "ZIP"
        image.save_render(str(out / f"{path.stem}.exr"), scene=scene)
        done = time.perf_counter()
        if first is None:
            first = time.time() - launched
        frames.append({"open": t_render - t_open, "render": t_write - t_render, "write": done - t_write})
    print(json.dumps({"frames": frames, "first_image": first, "exit": time.time() - launched}), flush=True)


# -- step 3: synthfarm's embedded farm, watched from this process --
def synthfarm_run(recipe: str, jobs: int, preview: bool, out: Path) -> dict:
    launched = time.perf_counter()
    proc = subprocess.Popen([*SYNTHFARM, "render", recipe, "--jobs", str(jobs), "--device", "cpu", "--out", str(out),
                             *(["--preview"] if preview else [])], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done: dict[int, float] = {}
    first = None
    log, images = out / "jobs.jsonl", out / "images"
    while True:
        running = proc.poll() is None
        now = time.perf_counter() - launched
        if first is None and images.is_dir() and any(images.glob("*.png")):
            first = now
        if log.is_file():
            for line in log.read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if record.get("status") == "done" and record["id"] not in done:
                    done[record["id"]] = now
        if not running:
            break
        time.sleep(0.002)
    if proc.returncode:
        raise RuntimeError(f"synthfarm render exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
    ends = sorted(done.values())
    render_calls = sorted(json.loads(p.read_text())["timings"]["render"] for p in (out / "metadata").glob("*-meta.json"))
    return {"walls": [b - a for a, b in zip(ends, ends[1:])], "render_calls": render_calls, "first_image": first,
            "exit": time.perf_counter() - launched}


def tier_recipe(recipe: Path, samples: int, work: Path) -> str:
    """The recipe with every sensor at ``samples`` samples, written beside the original (relative paths hold)."""
    import yaml

    from synthfarm.addon.core.recipe import load_recipe

    data = load_recipe(recipe).to_data()
    for sensor in data["sensors"]:
        sensor["samples"] = samples
    patched = recipe.parent / f".bench-side-{os.getpid()}.yaml"
    patched.write_text(yaml.safe_dump(data))
    return str(patched)


def median(values) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def report(tier: str, plains: list[dict], farms: list[dict]) -> None:
    warm_plain = [f for run in plains for f in run["frames"][1:]]  # the first frame of a process compiles kernels
    floor = median(f["render"] for f in warm_plain)
    plain_wall = median(f["render"] + f["write"] for f in warm_plain)
    sf_wall = median(w for run in farms for w in run["walls"])
    sf_render = median(r for run in farms for r in run["render_calls"])
    plain_first, sf_first = median(r["first_image"] for r in plains), median(r["first_image"] for r in farms)
    print(f"\n[{tier}] medians of warm frames (first job of each run left out)")
    rows = [("plain bpy: render call (floor)", floor, 1.0),
            ("plain bpy: render + PNG + multilayer EXR", plain_wall, plain_wall / floor),
            ("plain bpy: opening the scene's .blend", median(f["open"] for f in warm_plain), None),
            ("synthfarm: render call", sf_render, sf_render / floor),
            ("synthfarm: job wall (embedded farm, all outputs)", sf_wall, sf_wall / floor),
            ("plain bpy: launch -> first image", plain_first, None),
            ("synthfarm render: launch -> first image", sf_first, sf_first / plain_first)]
    for name, seconds, ratio in rows:
        print(f"  {name:<52} {seconds:8.3f} s" + (f"  {ratio:6.2f} x floor" if ratio is not None and
                                                    "launch" not in name else
                                                    (f"  {ratio:6.2f} x plain" if ratio is not None else "")))
    target = {"preview": 0.25, "full": 0.05}.get(tier)
    print(f"  synthfarm non-render share of a frame: {1 - sf_render / sf_wall:6.1%} (own render call), "
          f"{1 - floor / sf_wall:6.1%} (plain bpy's call)" + (f"; target <= {target:.0%}" if target else ""))
    print(f"  plain bpy's own non-render share (writing its files): {1 - floor / plain_wall:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tiers", nargs="+", choices=["preview", "full"], default=["preview", "full"])
    parser.add_argument("--samples", type=int, default=16, help="samples of the full tier")
    parser.add_argument("--recipe", default=str(ROOT / "assets/recipes/toybox.yaml"))
    parser.add_argument("--capture", nargs=3, metavar=("RECIPE", "TIER", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--plain", nargs=3, metavar=("DIR", "OUT", "LAUNCHED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.capture:
        recipe, tier, blends = args.capture
        return capture(recipe, args.jobs, tier == "preview", Path(blends))
    if args.plain:
        blends, out, launched = args.plain
        return plain(Path(blends), Path(out), float(launched))

    work = Path(tempfile.mkdtemp(prefix="synthfarm-bench-side-"))
    patched = tier_recipe(Path(args.recipe), args.samples, work)
    try:
        for tier in args.tiers:
            blends = work / tier / "scenes"
            blends.mkdir(parents=True)
            subprocess.run([sys.executable, __file__, "--jobs", str(args.jobs), "--capture", patched, tier,
                            str(blends)], check=True, stdout=subprocess.DEVNULL)
            plains, farms = [], []
            for r in range(args.rounds):
                order = ("plain", "synthfarm") if r % 2 == 0 else ("synthfarm", "plain")
                for side in order:
                    out = work / tier / f"{side}-{r}"
                    out.mkdir()
                    if side == "plain":
                        result = subprocess.run([sys.executable, __file__, "--plain", str(blends), str(out),
                                                 repr(time.time())], capture_output=True, text=True)
                        if result.returncode:
                            raise RuntimeError(f"plain bpy failed: {result.stderr[-3000:]}")
                        plains.append(json.loads(result.stdout.strip().splitlines()[-1]))
                    else:
                        farms.append(synthfarm_run(patched, args.jobs, tier == "preview", out))
                    shutil.rmtree(out, ignore_errors=True)
            print(f"\n{Path(args.recipe).name}, tier {tier}, {args.jobs} jobs x {args.rounds} interleaved rounds, "
                  f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
            report(tier, plains, farms)
    finally:
        Path(patched).unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
