"""Benchmark: cameras and motion (issue 11). Prints figures and ratios to baselines measured in the same run.

1. Distortion remap and flow per frame at 640x480 (target: under 5 % of a preview-tier frame): remapping
   RGB (bilinear), depth, normals and ids (nearest) and turning a Vector pass into forward and backward flow
   through the lens, against rendering the toybox recipe's preview tier (its baseline, in this process).
2. Placement of 200 objects with collision checks (target: under 1 s): scatter_on_surface on a table,
   against placing them with no checks (pose_in_volume).
3. Camera visibility check per try (target: under 20 ms): the geometric check of 5 targets against a
   scene of 60 objects.

    python tests/bench/cameras.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="synthfarm-bench-"))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

import synthfarm  # noqa: E402
from synthfarm.addon.core.flow import flow_from_vector, flow_through_view  # noqa: E402
from synthfarm.addon.core.lens import Lens, render_view  # noqa: E402
from synthfarm.addon.core.recipe import load_recipe, recipe_from_data  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def remap_and_flow(repeat: int) -> None:
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    lens = Lens(K, (640, 480), "brown_conrady", (-0.3, 0.09, 0.001, -0.001, -0.01))
    maps = best(lambda: render_view(lens), repeat)
    view = render_view(lens)
    Wr, Hr = view.source.size
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (Hr, Wr, 3), dtype=np.uint8)
    depth, normals = rng.random((Hr, Wr), np.float32), rng.random((Hr, Wr, 3), np.float32)
    index, vector = rng.integers(0, 50, (Hr, Wr)).astype(np.int32), rng.normal(size=(Hr, Wr, 4)).astype(np.float32)

    def frame():
        view.linear(rgb), view.nearest(depth), view.nearest(normals), view.nearest(index)
        for f in flow_from_vector(*np.moveaxis(vector, -1, 0)):
            flow_through_view(view, f)

    per_frame = best(frame, repeat)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        summary = synthfarm.render(ROOT / "assets/recipes/toybox.yaml", jobs=3, out=out, preview=True, progress=False)
        wall = (time.perf_counter() - start) / summary.frames
    print(f"remap + flow at 640x480 (render {Wr}x{Hr}): {per_frame * 1000:.1f} ms per frame; maps once per job "
          f"{maps * 1000:.1f} ms")
    print(f"preview-tier toybox frame (baseline): {wall * 1000:.0f} ms -> remap + flow = {100 * per_frame / wall:.1f} %"
          f" of a preview frame (target < 5 %)")


def placement(repeat: int) -> None:
    from synthfarm.addon.core.sampling import Sampler
    from synthfarm.addon.engine.assets import AssetCache
    from synthfarm.addon.engine.generators import Primitives, generate
    from synthfarm.addon.engine.randomizers import apply_randomizers
    from synthfarm.addon.engine.scene import JobScope

    def run(randomizer):
        recipe = recipe_from_data({"name": "b", "sensors": [{"name": "cam", "kind": "camera"}], "generators": [
            {"name": "table", "kind": "primitive", "shape": "cube", "size": [3, 3, 0.7]},
            {"name": "t", "kind": "primitive", "shape": "cylinder", "count": 200, "size": [0.08, 0.08, 0.12]}],
            "randomizers": [randomizer]})
        bpy.ops.wm.read_factory_settings(use_empty=True)
        cache, prims = AssetCache(), Primitives()
        with JobScope(keep=lambda: cache.datablocks() | prims.session_ids()) as scope:
            sampler = Sampler(1)
            made = generate(recipe, None, sampler, scope.collection, cache, prims)
            start = time.perf_counter()
            apply_randomizers(recipe, made, sampler, cameras={}, collection=scope.collection, base_dir=None, frames=1)
            seconds = time.perf_counter() - start
            log = next(iter(v for k, v in sampler.log.items() if k.startswith("randomizers/")))
        return seconds, log

    checked = [run({"kind": "scatter_on_surface", "targets": ["t"], "surface": "table"}) for _ in range(repeat)]
    free = [run({"kind": "pose_in_volume", "targets": ["t"], "rotation": "yaw",
                 "position": {"uniform": [[-1.5, -1.5, 0.7], [1.5, 1.5, 0.7]]}}) for _ in range(repeat)]
    seconds, log = min(checked, key=lambda r: r[0])
    print(f"placement of 200 objects with collision checks: {seconds * 1000:.0f} ms ({log['placed']} placed in "
          f"{log['tries']} tries; target < 1000 ms); without checks (baseline): {min(f[0] for f in free) * 1000:.0f} ms")


def visibility(repeat: int) -> None:
    from synthfarm.addon.core.sampling import Sampler
    from synthfarm.addon.engine.assets import AssetCache
    from synthfarm.addon.engine.generators import Primitives, generate
    from synthfarm.addon.engine.looking import SceneRays, see
    from synthfarm.addon.engine.placement import Meshes
    from synthfarm.addon.engine.randomizers import apply_randomizers
    from synthfarm.addon.engine.scene import JobScope
    from synthfarm.addon.engine.sensors import build_cameras

    recipe = load_recipe(ROOT / "assets/recipes/toybox.yaml")
    data = recipe.to_data()
    data["parameters"]["num_toys"]["default"] = 60
    data["parameters"]["num_toys"]["max"] = 60
    recipe = recipe_from_data(data, ROOT / "assets/recipes")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    cache, prims = AssetCache(), Primitives()
    with JobScope(keep=lambda: cache.datablocks() | prims.session_ids()) as scope:
        sampler = Sampler(1, 0, {n: p.default for n, p in recipe.parameters.items()})
        made = generate(recipe, ROOT / "assets/recipes", sampler, scope.collection, cache, prims)
        cams = build_cameras(recipe, sampler, scope.collection, made)
        apply_randomizers(recipe, made, sampler, cameras=cams, collection=scope.collection,
                          base_dir=ROOT / "assets/recipes", frames=1)
        meshes = Meshes()
        start = time.perf_counter()
        rays = SceneRays(meshes)
        built = time.perf_counter() - start

        class Ask:
            min_in_frame, min_visible, min_pixels, see_all = 0.5, 0.5, 0, True

        cam = next(iter(cams.values()))
        targets = made["toys"][:5]
        see(cam, targets, meshes, rays, Ask)
        per_try = statistics.median([best(lambda: see(cam, targets, meshes, rays, Ask), 1) for _ in range(repeat * 4)])
    print(f"camera visibility check, 5 targets among {len(made['toys']) + 1} objects: {per_try * 1000:.1f} ms per try "
          f"(target < 20 ms); the scene's ray tree once per randomizer: {built * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    remap_and_flow(args.repeat)
    placement(args.repeat)
    visibility(args.repeat)


if __name__ == "__main__":
    main()
