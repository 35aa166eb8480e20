"""The ``build`` fixture: a recipe applied to an empty Blender scene inside a JobScope."""
from pathlib import Path

import bpy
import numpy as np
import pytest
from mathutils.bvhtree import BVHTree

from synthfarm.addon.core.recipe import recipe_from_data
from synthfarm.addon.core.sampling import Sampler
from synthfarm.addon.engine.assets import AssetCache
from synthfarm.addon.engine.generators import Primitives, generate
from synthfarm.addon.engine.modifiers import apply_modifiers
from synthfarm.addon.engine.randomizers import apply_randomizers
from synthfarm.addon.engine.scene import JobScope
from synthfarm.addon.engine.sensors import build_cameras

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets"
CAM = [{"name": "cam", "kind": "camera", "resolution": [64, 48], "samples": 1}]


@pytest.fixture()
def build():
    """Apply a recipe to an empty scene inside a JobScope; yields a function returning what was made."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    cache, prims = AssetCache(), Primitives()
    scope = JobScope(keep=lambda: cache.datablocks() | prims.session_ids())
    scope.__enter__()

    def run(data, seed=1, frames=1):
        recipe = recipe_from_data({"name": "t", "sensors": CAM, **data}, base_dir=ASSETS / "recipes")
        sampler = Sampler(seed)
        made = generate(recipe, ASSETS / "recipes", sampler, scope.collection, cache, prims)
        apply_modifiers(recipe, made, sampler, cache=cache, base_dir=ASSETS / "recipes")
        cams = build_cameras(recipe, sampler, scope.collection)
        updates = apply_randomizers(recipe, made, sampler, cameras=cams, collection=scope.collection,
                                    base_dir=ASSETS / "recipes", frames=frames)
        return made, cams, updates, sampler

    yield run
    scope.__exit__(None, None, None)


def world_tree(obj):
    """A BVH tree of the object's polygons in world space, straight from Blender's mesh."""
    bpy.context.view_layer.update()
    mesh = obj.data
    return BVHTree.FromPolygons([obj.matrix_world @ v.co for v in mesh.vertices], [p.vertices[:] for p in mesh.polygons])


def bounds(obj):
    """World bounds of the object's vertices (its rotated bound_box would be looser)."""
    points = np.array([obj.matrix_world @ v.co for v in obj.data.vertices])
    return points.min(axis=0), points.max(axis=0)


def overlapping_pairs(objects):
    trees = [(o, world_tree(o)) for o in objects]
    pairs = []
    for i, (a, ta) in enumerate(trees):
        for b, tb in trees[i + 1:]:
            if ta.overlap(tb):
                pairs.append((a.name, b.name))
    return pairs
