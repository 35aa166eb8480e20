"""Generators: what objects appear. Each instance is a new object sharing a cached template mesh.

Every object a generator makes carries two custom properties: ``synthfarm_generator`` (the
generator's name, which modifiers and randomizers target) and ``synthfarm_class`` (its label, absent
for unlabelled background such as a floor). Templates have their origin at the centre of their base
(x, y centre, lowest z), so ``location`` puts an object standing on that point.
"""
from __future__ import annotations

import logging
from pathlib import Path

import bpy

from ..core.recipe import Recipe, resolve_path
from ..core.sampling import Sampler
from . import assets as asset_lib
from .materials import new_material, own_materials, set_base_color
from .scene import CLASS_PROP, labelled_class, pointers

log = logging.getLogger(__name__)

GENERATOR_PROP = "synthfarm_generator"
PRIMITIVE_OPS = {
    "cube": lambda: bpy.ops.mesh.primitive_cube_add(size=1),
    "sphere": lambda: bpy.ops.mesh.primitive_uv_sphere_add(segments=32, ring_count=16),
    "cylinder": lambda: bpy.ops.mesh.primitive_cylinder_add(vertices=32),
    "cone": lambda: bpy.ops.mesh.primitive_cone_add(vertices=32),
    "torus": lambda: bpy.ops.mesh.primitive_torus_add(),
    "plane": lambda: bpy.ops.mesh.primitive_plane_add(size=1),
    "monkey": lambda: bpy.ops.mesh.primitive_monkey_add(),
}


class GeneratorError(Exception):
    pass


class Primitives:
    """Unit-sized primitive meshes made once per process (bounding box 1 x 1 x 1, origin at base centre)."""

    def __init__(self):
        self.meshes: dict[str, bpy.types.Mesh] = {}
        self.default_material = None

    def mesh(self, shape: str) -> bpy.types.Mesh:
        mesh = self.meshes.get(shape)
        if mesh is not None and mesh.name in bpy.data.meshes:
            return mesh
        scene = bpy.context.scene
        with bpy.context.temp_override(scene=scene, view_layer=scene.view_layers[0],
                                       collection=scene.collection):
            PRIMITIVE_OPS[shape]()
        obj = bpy.context.view_layer.objects.active if bpy.context.view_layer.objects.active else None
        obj = obj if obj is not None and obj.type == "MESH" else scene.collection.objects[-1]
        mesh = obj.data
        bpy.data.objects.remove(obj)
        mesh.name = f"synthfarm_{shape}"
        xs, ys, zs = zip(*(v.co[:] for v in mesh.vertices))
        centre = ((max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2, min(zs))
        dims = [max(max(a) - min(a), 1e-9) for a in (xs, ys, zs)]
        for v in mesh.vertices:
            v.co = [(v.co[i] - centre[i]) / (dims[i] if dims[i] > 1e-6 else 1.0) for i in range(3)]
        mesh.update()
        if self.default_material is None or self.default_material.name not in bpy.data.materials:
            self.default_material = new_material("synthfarm_default", (0.8, 0.8, 0.8))
        mesh.materials.append(self.default_material)
        self.meshes[shape] = mesh
        return mesh

    def pointers(self) -> set[int]:
        return pointers([*self.meshes.values(), *([self.default_material] if self.default_material else [])])

    def clear(self):
        self.meshes.clear()
        self.default_material = None

    def release(self):
        """Remove the primitive meshes nothing uses any more, and forget them."""
        from .assets import remove_unused

        remove_unused([*self.meshes.values(), *([self.default_material] if self.default_material else [])])
        self.clear()


def _new_object(name: str, mesh, collection, generator: str, cls: str | None):
    obj = bpy.data.objects.new(name, mesh)
    collection.objects.link(obj)
    obj[GENERATOR_PROP] = generator
    if cls:
        obj[CLASS_PROP] = cls
    return obj


def _asset_class(gen, path: Path, object_name: str | None) -> str | None:
    if gen.class_from == "asset_name":
        return object_name or path.stem
    return gen.class_


def generate(recipe: Recipe, base_dir: Path | None, sampler: Sampler, collection,
             cache: "asset_lib.AssetCache", primitives: Primitives) -> dict[str, list]:
    """Create every generator's objects in ``collection``. Returns {generator name: [objects]}."""
    made: dict[str, list] = {}
    for gen in recipe.generators:
        stream = sampler.stream(f"generators/{gen.name}")
        objects = []
        if gen.kind == "scene":
            objects = _scene_objects(gen)
            for obj in objects:
                obj[GENERATOR_PROP] = gen.name
                if gen.class_:
                    obj[CLASS_PROP] = gen.class_
            made[gen.name] = objects
            continue
        count = stream.draw("count", gen.count)
        if gen.kind == "asset_dir":
            files = asset_lib.list_assets(resolve_path(gen.source, base_dir))
            weights = [float((gen.weights or {}).get(f.stem, 1.0)) for f in files]
            total = sum(weights)
        for i in range(count):
            item = f"{gen.name}.{i:03d}"
            if gen.kind == "primitive":
                obj = _new_object(item, primitives.mesh(gen.shape), collection, gen.name,
                                  gen.shape if gen.class_from == "asset_name" else gen.class_)
                obj.scale = stream.draw("size", gen.size, item)
                obj.location = stream.draw("location", gen.location, item)
                own_materials(obj)
                set_base_color(obj.material_slots[0].material, stream.draw("color", gen.color, item))
            else:
                if gen.kind == "asset":
                    path = resolve_path(gen.source, base_dir)
                else:
                    pick = int(stream.rng.choice(len(files), p=[w / total for w in weights]))
                    path = files[pick]
                    stream.record("asset", path.name, item)
                template = cache.get(path, getattr(gen, "object", None))
                obj = asset_lib.instantiate(template, collection, item)
                obj[GENERATOR_PROP] = gen.name
                cls = _asset_class(gen, path, getattr(gen, "object", None))
                if cls:
                    obj[CLASS_PROP] = cls
                if gen.kind == "asset":
                    obj.location = stream.draw("location", gen.location, item)
            objects.append(obj)
        made[gen.name] = objects
    return made


def _scene_objects(gen) -> list:
    objects = []
    for name in gen.objects:
        obj = bpy.data.objects.get(name)
        if obj is None or name not in bpy.context.scene.objects:
            raise GeneratorError(f"generator {gen.name!r}: no object {name!r} in the base scene")
        objects.append(obj)
    if gen.collection:
        coll = bpy.data.collections.get(gen.collection)
        if coll is None:
            raise GeneratorError(f"generator {gen.name!r}: no collection {gen.collection!r} in the base scene")
        objects += [o for o in coll.all_objects if o.type == "MESH" and o not in objects]
    return objects


def labelled_objects(scene) -> list:
    """Every object that renders and has a class, in a stable order (base scene first, then by name)."""
    return sorted((o for o in scene.objects if o.type == "MESH" and not o.hide_render and labelled_class(o)),
                  key=lambda o: (GENERATOR_PROP in o, o.name))
