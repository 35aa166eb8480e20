"""How long the add-on's operators take on the toybox recipe (bpy module, CPU): Randomize, Clear Sample,
Preview, and what a panel redraw costs (scene props -> recipe data, validation fresh and cached).

    python tests/bench/addon_ui.py
"""
import time
from pathlib import Path

import bpy

import synthfarm
from synthfarm.addon import storage
from synthfarm.addon.ui import widgets

ROOT = Path(__file__).resolve().parents[2]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    synthfarm.register()
    bpy.ops.synthfarm.import_recipe(filepath=str(ROOT / "assets/recipes/toybox.yaml"))
    scene = bpy.context.scene
    first = timed(lambda: bpy.ops.synthfarm.randomize(seed=1))
    later = [timed(lambda s=s: bpy.ops.synthfarm.randomize(seed=s)) for s in range(2, 7)]
    clear = timed(bpy.ops.synthfarm.clear_sample)
    preview = timed(bpy.ops.synthfarm.preview)
    data = timed(lambda: storage.recipe_data(scene.synthfarm))
    widgets._VALIDATION.clear()
    fresh = timed(lambda: widgets.recipe_problems(scene))
    cached = timed(lambda: widgets.recipe_problems(scene))
    print(f"randomize first {first:.2f} s, then mean {sum(later) / len(later):.2f} s; clear {clear * 1000:.0f} ms; "
          f"preview {preview:.2f} s; props->data {data * 1000:.1f} ms; validation {fresh * 1000:.1f} ms, "
          f"cached {cached * 1000:.1f} ms ({fresh / max(cached, 1e-9):.1f}x)")


if __name__ == "__main__":
    main()
