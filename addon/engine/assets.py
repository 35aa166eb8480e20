"""Loading assets into Blender, once per process.

An asset file (.blend object or collection, .obj, .ply, .stl, .glb/.gltf) becomes ONE template mesh
object: its meshes are joined with their world transforms applied and materials kept, and its origin is
moved to the centre of its base (x, y centre, lowest z). Templates live in a collection that is not in
the scene, so they never render; instances share the template's mesh data.

.blend files are read with ``bpy.data.libraries.load`` (append, no linking); no script in them runs
(the bpy module does not auto-execute Python, and nothing here enables it).
"""
from __future__ import annotations

import logging
from pathlib import Path

import bmesh
import bpy
from mathutils import Matrix, Vector

from ..core.classes import ASSET_EXTENSIONS, asset_files
from .keypoints import PREFIX, world_keypoints
from .keypoints import PROP as KEYPOINTS_PROP
from .scene import new_datablocks, session_id_sets, session_ids

log = logging.getLogger(__name__)
CACHE_COLLECTION = "synthfarm_asset_cache"


class AssetError(Exception):
    pass


def member_path(member: str, base_dir: Path | None) -> Path:
    """The file of a drawn file-set member; ``blender:NAME`` is one of the world HDRIs Blender ships."""
    from ..core.values import BUILTIN, resolve_member

    if member.startswith(BUILTIN):
        folder = bpy.utils.system_resource("DATAFILES", path="studiolights/world")
        path = Path(folder or "") / f"{member[len(BUILTIN):]}.exr"
        if not folder or not path.is_file():
            raise AssetError(f"{member!r}: this Blender ({bpy.app.version_string}) has no {path.name} in its "
                             "studio lights; use an HDRI file instead")
        return path
    return resolve_member(member, base_dir)


def list_assets(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise AssetError(f"asset folder {str(directory)!r} does not exist")
    files = asset_files(directory)
    if not files:
        raise AssetError(f"asset folder {str(directory)!r} holds no {', '.join(ASSET_EXTENSIONS)} files")
    return files


def instantiate(template, collection, name: str):
    """A new object sharing the template's mesh, linked to ``collection``."""
    obj = template.copy()  # copies the object, not its mesh
    obj.name = name
    obj.matrix_world = Matrix.Identity(4)
    collection.objects.link(obj)
    return obj


IMPORTED_KINDS = ("objects", "meshes", "collections", "cameras", "lights", "materials", "images")  # an importer makes


def _import_file(path: Path) -> list:
    """Run Blender's importer for ``path``; return the mesh objects it made (other things are removed)."""
    suffix = path.suffix.lower()
    before = session_id_sets(IMPORTED_KINDS)
    scene = bpy.context.scene
    with bpy.context.temp_override(scene=scene, view_layer=scene.view_layers[0], collection=scene.collection):
        if suffix == ".obj":
            bpy.ops.wm.obj_import(filepath=str(path))
        elif suffix == ".ply":
            bpy.ops.wm.ply_import(filepath=str(path))
        elif suffix == ".stl":
            bpy.ops.wm.stl_import(filepath=str(path))
        elif suffix in (".glb", ".gltf"):
            import addon_utils

            addon_utils.enable("io_scene_gltf2", default_set=False)
            bpy.ops.import_scene.gltf(filepath=str(path))
        else:
            raise AssetError(f"{path.name}: unsupported asset type {suffix!r}; use one of {', '.join(ASSET_EXTENSIONS)}")
    new = dict.fromkeys(IMPORTED_KINDS, []) | new_datablocks(before)
    meshes = [o for o in new["objects"] if o.type == "MESH"]
    bpy.context.view_layer.update()
    matrices = {o.name: o.matrix_world.copy() for o in meshes}
    for obj in meshes:
        obj["_world"] = [list(row) for row in matrices[obj.name]]
        obj["_keypoints"] = {k: list(v) for k, v in world_keypoints(obj).items()}
    others = [o for o in new["objects"] if o.type != "MESH"] + new["collections"] + new["cameras"] + new["lights"]
    for obj in new["objects"]:
        for coll in list(obj.users_collection):
            coll.objects.unlink(obj)
    if others:
        bpy.data.batch_remove(others)
    return meshes


def _load_blend(path: Path, name: str | None) -> list:
    with bpy.data.libraries.load(str(path), link=False) as (src, dst):
        if name is None:
            dst.objects = list(src.objects)
        elif name in src.objects:  # with every keypoint empty: those of other objects are dropped below
            dst.objects = [name] + [o for o in src.objects if o.startswith(PREFIX)]
        elif name in src.collections:
            dst.collections = [name]
        else:
            raise AssetError(f"{path.name} has no object or collection named {name!r} "
                             f"(objects: {sorted(src.objects)[:10]}, collections: {sorted(src.collections)[:10]})")
    objects = [o for o in dst.objects if o is not None]
    for coll in dst.collections:
        objects += list(coll.all_objects)
    meshes = [o for o in objects if o.type == "MESH"]
    for obj in meshes:
        obj["_world"] = [list(row) for row in obj.matrix_world]  # parents' transforms are in matrix_world
        obj["_keypoints"] = {k: list(v) for k, v in world_keypoints(obj).items()}
    junk = [o for o in objects if o.type != "MESH"] + [c for c in dst.collections if c is not None]
    if junk:
        bpy.data.batch_remove(junk)
    return meshes


def _join(objects: list, name: str):
    """One mesh object from many: world transforms applied, materials kept, origin at the base centre."""
    materials: list = []
    keypoints = {k: Vector(v) for obj in objects for k, v in (obj.get("_keypoints") or {}).items()}
    bm = bmesh.new()
    for obj in objects:
        if "_keypoints" not in obj and obj.vertex_groups:
            keypoints.update(world_keypoints(obj, _world(obj)))
        mesh = obj.data.copy()
        mesh.transform(_world(obj))
        slots = [materials.index(m) if m in materials else (materials.append(m) or len(materials) - 1)
                 for m in mesh.materials] or [0]
        if mesh.polygons:
            indices = [0] * len(mesh.polygons)
            mesh.polygons.foreach_get("material_index", indices)
            mesh.polygons.foreach_set("material_index", [slots[min(i, len(slots) - 1)] for i in indices])
        bm.from_mesh(mesh)  # appends to what bm already holds
        bpy.data.meshes.remove(mesh)
    if not bm.verts:
        bm.free()
        raise AssetError(f"{name}: the asset holds no mesh geometry")
    xs, ys, zs = ([v.co[i] for v in bm.verts] for i in range(3))
    offset = Vector(((max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2, min(zs)))
    bmesh.ops.translate(bm, verts=bm.verts, vec=-offset)
    joined = bpy.data.meshes.new(name)
    bm.to_mesh(joined)
    bm.free()
    for material in materials:
        joined.materials.append(material)
    if not materials:  # e.g. .stl/.ply: give it a material so that modifiers can colour it
        from .materials import new_material

        joined.materials.append(new_material(name, (0.8, 0.8, 0.8)))
    old_meshes = [o.data for o in objects]
    bpy.data.batch_remove(objects)
    bpy.data.batch_remove([m for m in old_meshes if m.users == 0])
    template = bpy.data.objects.new(name, joined)
    if keypoints:
        template[KEYPOINTS_PROP] = {k: list(v - offset) for k, v in keypoints.items()}
    return template


def _world(obj) -> Matrix:
    return Matrix([list(row) for row in obj["_world"]]) if "_world" in obj else obj.matrix_world


class AssetCache:
    """Templates and material libraries loaded in this process, keyed by file, mtime and name; and the materials
    that procedural and texture-set materials are copied from (:class:`~.shader_graph.MaterialTemplates`)."""

    def __init__(self):
        from .shader_graph import MaterialTemplates

        self._templates: dict[tuple, object] = {}
        self._libraries: dict[tuple, dict] = {}
        self.materials = MaterialTemplates()

    def _collection(self):
        coll = bpy.data.collections.get(CACHE_COLLECTION)
        if coll is None:
            coll = bpy.data.collections.new(CACHE_COLLECTION)
            coll.use_fake_user = True
        return coll

    def get(self, path: Path, name: str | None = None):
        path = Path(path)
        if not path.is_file():
            raise AssetError(f"asset {str(path)!r} does not exist")
        key = (str(path.resolve()), path.stat().st_mtime_ns, name)
        template = self._templates.get(key)
        if template is not None:
            try:
                template.name  # noqa: B018 - raises ReferenceError once Blender freed it
                return template
            except ReferenceError:
                pass
        start = bpy.context.scene  # noqa: F841 - keeps the scene alive while importing
        meshes = _load_blend(path, name) if path.suffix.lower() == ".blend" else _import_file(path)
        if not meshes:
            raise AssetError(f"{path.name}: no mesh objects found" + (f" in {name!r}" if name else ""))
        template = _join(meshes, f"asset:{name or path.stem}")
        self._collection().objects.link(template)
        self._templates[key] = template
        log.info("loaded asset %s (%d vertices)", path.name, len(template.data.vertices))
        return template

    def load_material_library(self, path: Path) -> dict:
        path = Path(path)
        if not path.is_file():
            raise AssetError(f"material library {str(path)!r} does not exist")
        key = (str(path.resolve()), path.stat().st_mtime_ns)
        if key not in self._libraries:
            with bpy.data.libraries.load(str(path), link=False) as (src, dst):
                dst.materials = list(src.materials)
            self._libraries[key] = {m.name: m for m in dst.materials if m is not None}
        return self._libraries[key]

    def datablocks(self) -> set[int]:
        """Session ids of everything the cache owns (job clean-up must not remove them)."""
        ids = [self._collection()]
        for template in self._templates.values():
            ids += [template, template.data, *[m for m in template.data.materials if m]]
        for library in self._libraries.values():
            ids += list(library.values())
        ids += self.materials.materials()
        for material in [i for i in ids if isinstance(i, bpy.types.Material)]:
            if material.node_tree:
                ids += [n.image for n in material.node_tree.nodes if n.type == "TEX_IMAGE" and n.image]
        return session_ids(ids)

    def clear(self) -> None:
        self._templates.clear()
        self._libraries.clear()
        self.materials.clear()

    def release(self) -> None:
        """Remove the cache from bpy.data (the add-on does so after each run: a user's .blend must not
        keep it). Meshes and materials still used in the scene stay."""
        coll = bpy.data.collections.get(CACHE_COLLECTION)
        objects = list(coll.objects) if coll is not None else []
        data = [o.data for o in objects] + [m for o in objects for m in o.data.materials if m]
        data += [m for library in self._libraries.values() for m in library.values()]
        data += self.materials.materials()
        bpy.data.batch_remove([coll, *objects] if coll is not None else [])
        remove_unused(data)
        self.clear()


def remove_unused(ids) -> None:
    """Remove those of ``ids`` nothing uses any more, repeatedly (a mesh removed frees its materials)."""
    ids = list(ids)
    while True:
        unused, alive = set(), []
        for id_ in ids:
            try:
                (unused.add if id_.users == 0 else alive.append)(id_)
            except ReferenceError:  # already freed
                pass
        if not unused:
            return
        bpy.data.batch_remove(unused)
        ids = alive
