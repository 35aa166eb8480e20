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

from ..core.components import FILE_DOMAINS
from ..core.recipe import Recipe
from ..core.values import file_members
from ..core.sampling import Sampler
from . import assets as asset_lib
from .materials import new_material, own_materials, set_base_color
from .scene import CLASS_PROP, alive, labelled_class, session_ids

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
        if alive(mesh, bpy.data.meshes):
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
        if not alive(self.default_material, bpy.data.materials):
            self.default_material = new_material("synthfarm_default", (0.8, 0.8, 0.8))
        mesh.materials.append(self.default_material)
        self.meshes[shape] = mesh
        return mesh

    def session_ids(self) -> set[int]:
        return session_ids([*self.meshes.values(), *([self.default_material] if self.default_material else [])])

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
        if gen.kind == "distractors":
            made[gen.name] = _distractors(gen, count, stream, base_dir, collection, cache, primitives)
            continue
        if gen.kind != "primitive":
            members = file_members(gen.source, FILE_DOMAINS["source"], base_dir)
            if not members:
                raise GeneratorError(f"generators.{gen.name}.source: {gen.source.to_data()!r} names no asset file")
            weights = [float((getattr(gen, "weights", None) or {}).get(Path(m).stem, 1.0)) for m in members]
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
                member = _pick(members, weights, stream, item)
                path = asset_lib.member_path(member, base_dir)
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


def _pick(members: list[str], weights: list[float], stream, item: str) -> str:
    """One asset of a set for one object (recorded); a set of one draws nothing."""
    if len(members) == 1:
        return members[0]
    total = sum(weights)
    pick = members[int(stream.rng.choice(len(members), p=[w / total for w in weights]))]
    return stream.record("asset", pick, item)


def _distractors(gen, count: int, stream, base_dir, collection, cache, primitives) -> list:
    """Unlabelled clutter: primitives (or assets) scaled to a drawn size, each with a procedural material."""
    from .procedural import assign_material

    members = file_members(gen.source, FILE_DOMAINS["source"], base_dir) if gen.source is not None else []
    if gen.source is not None and not members:
        raise GeneratorError(f"generators.{gen.name}.source: {gen.source.to_data()!r} names no asset file")
    objects = []
    for i in range(count):
        item = f"{gen.name}.{i:03d}"
        if members:
            template = cache.get(asset_lib.member_path(_pick(members, [1.0] * len(members), stream, item), base_dir))
            obj = asset_lib.instantiate(template, collection, item)
        else:
            shape = gen.shapes[int(stream.rng.integers(len(gen.shapes)))]
            stream.record("shape", shape, item)
            obj = _new_object(item, primitives.mesh(shape), collection, gen.name, None)
            obj.scale = [float(x) for x in stream.rng.uniform(0.3, 1.0, size=3)]  # unit mesh, random proportions
        obj[GENERATOR_PROP] = gen.name
        obj.pop(CLASS_PROP, None)
        bpy.context.view_layer.update()
        size = stream.draw("size", gen.size, item)
        obj.scale = [s * size / max(max(obj.dimensions), 1e-6) for s in obj.scale]
        assign_material(obj, stream, item, family=stream.draw("family", gen.family, item), templates=cache.materials)
        objects.append(obj)
    return objects


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
