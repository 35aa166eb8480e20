"""Make the workbench example's assets with the bpy module: six machined parts and four backplates.

    python scripts/make_part_assets.py [--backplates-only]

Deterministic; what it writes is committed (CC0-1.0, made here):
- ``assets/parts/``: hex nut, hex bolt, flat washer, L bracket, spur gear, pipe elbow (steel-sized, 2-12 cm),
  as glTF binaries (the origin at the bottom centre, like the toys).
- ``assets/backplates/``: four 640x480 JPEG "photographs" of a workshop wall and shelves, rendered with
  Cycles from procedural materials, to composite behind the scene.
"""
from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

import bpy  # first: the bpy module makes bmesh and mathutils importable
import bmesh
from mathutils import Matrix

ROOT = Path(__file__).resolve().parent.parent
PARTS, PLATES = ROOT / "assets" / "parts", ROOT / "assets" / "backplates"
log = logging.getLogger("make_part_assets")


def steel(name="steel", rgb=(0.55, 0.56, 0.58), roughness=0.35):
    mat = bpy.data.materials.get(name) or bpy.data.materials.new(name)
    bsdf = next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Base Color"].default_value = (*rgb, 1.0)
    bsdf.inputs["Metallic"].default_value = 1.0
    bsdf.inputs["Roughness"].default_value = roughness
    return mat


def mesh_object(name: str, bm: bmesh.types.BMesh, mat) -> bpy.types.Object:
    me = bpy.data.meshes.new(name)
    bm.normal_update()
    bm.to_mesh(me)
    bm.free()
    obj = bpy.data.objects.new(name, me)
    bpy.context.scene.collection.objects.link(obj)
    obj.data.materials.append(mat)
    zmin = min(v.co.z for v in me.vertices)
    me.transform(Matrix.Translation((0, 0, -zmin)))  # origin at the bottom centre
    return obj


def prism_with_hole(bm, sides: int, radius: float, hole: float, height: float, z0=0.0, segments=32):
    """A prism of ``sides`` sides (a ring when sides is large) with a round hole, from z0 up."""
    outer = [bm.verts.new((radius * math.cos(2 * math.pi * k / sides), radius * math.sin(2 * math.pi * k / sides), z0))
             for k in range(sides)]
    inner = [bm.verts.new((hole * math.cos(2 * math.pi * k / segments), hole * math.sin(2 * math.pi * k / segments), z0))
             for k in range(segments)]
    # bridge the outer polygon and the hole on the bottom, then extrude up
    bm.verts.ensure_lookup_table()
    edges_o = [bm.edges.new((outer[k], outer[(k + 1) % sides])) for k in range(sides)]
    edges_i = [bm.edges.new((inner[k], inner[(k + 1) % segments])) for k in range(segments)]
    bmesh.ops.bridge_loops(bm, edges=edges_o + edges_i)
    faces = [f for f in bm.faces]
    ret = bmesh.ops.extrude_face_region(bm, geom=faces)
    top = [e for e in ret["geom"] if isinstance(e, bmesh.types.BMVert)]
    bmesh.ops.translate(bm, verts=top, vec=(0, 0, height))
    bmesh.ops.recalc_face_normals(bm, faces=bm.faces)


def hex_nut():
    bm = bmesh.new()
    prism_with_hole(bm, 6, 0.016, 0.008, 0.012)
    return mesh_object("hex_nut", bm, steel("zinc", (0.72, 0.72, 0.68), 0.3))


def washer():
    bm = bmesh.new()
    prism_with_hole(bm, 48, 0.02, 0.0085, 0.0025)
    return mesh_object("washer", bm, steel())


def hex_bolt():
    bm = bmesh.new()
    bmesh.ops.create_cone(bm, cap_ends=True, segments=6, radius1=0.014, radius2=0.014, depth=0.01,
                          matrix=Matrix.Translation((0, 0, 0.005)))
    bmesh.ops.create_cone(bm, cap_ends=True, segments=24, radius1=0.008, radius2=0.008, depth=0.07,
                          matrix=Matrix.Translation((0, 0, 0.045)))
    return mesh_object("hex_bolt", bm, steel("dark_steel", (0.3, 0.3, 0.32), 0.45))


def l_bracket():
    bm = bmesh.new()
    for size, loc in (((0.08, 0.04, 0.004), (0.04, 0, 0.002)), ((0.004, 0.04, 0.06), (0.002, 0, 0.03))):
        bmesh.ops.create_cube(bm, size=1.0, matrix=Matrix.Translation(loc) @ Matrix.Diagonal((*size, 1.0)))
    return mesh_object("l_bracket", bm, steel("galvanised", (0.62, 0.64, 0.66), 0.5))


def spur_gear(teeth=16, radius=0.03, depth=0.005, width=0.01):
    bm = bmesh.new()
    n = teeth * 4
    ring = []
    for k in range(n):  # tooth profile: two points out, two points in
        r = radius + (depth if k % 4 in (1, 2) else 0.0)
        a = 2 * math.pi * k / n
        ring.append(bm.verts.new((r * math.cos(a), r * math.sin(a), 0.0)))
    face = bm.faces.new(ring)
    ret = bmesh.ops.extrude_face_region(bm, geom=[face])
    bmesh.ops.translate(bm, verts=[e for e in ret["geom"] if isinstance(e, bmesh.types.BMVert)], vec=(0, 0, width))
    bmesh.ops.recalc_face_normals(bm, faces=bm.faces)
    return mesh_object("spur_gear", bm, steel("brass", (0.78, 0.6, 0.3), 0.3))


def pipe_elbow(bend=0.04, radius=0.012, wall=0.002):
    bm = bmesh.new()
    bmesh.ops.create_circle(bm, cap_ends=False, segments=24, radius=radius)
    bmesh.ops.create_circle(bm, cap_ends=False, segments=24, radius=radius - wall)
    bmesh.ops.bridge_loops(bm, edges=bm.edges[:])
    bmesh.ops.translate(bm, verts=bm.verts[:], vec=(bend, 0, 0))
    geom = bm.faces[:] + bm.edges[:] + bm.verts[:]
    bmesh.ops.rotate(bm, verts=bm.verts[:], cent=(0, 0, 0), matrix=Matrix.Rotation(math.pi / 2, 3, "X"))
    bmesh.ops.spin(bm, geom=bm.faces[:] + bm.edges[:] + bm.verts[:], axis=(0, 0, 1), cent=(0, 0, 0), steps=12,
                   angle=math.pi / 2, use_duplicate=False)
    del geom
    bmesh.ops.recalc_face_normals(bm, faces=bm.faces)
    return mesh_object("pipe_elbow", bm, steel("copper", (0.85, 0.45, 0.3), 0.35))


def save_glb(obj, path: Path) -> None:
    bpy.ops.object.select_all(action="DESELECT")
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.export_scene.gltf(filepath=str(path), export_format="GLB", use_selection=True, export_apply=True)


def backplates(count=4) -> None:
    """Render a wall with shelves and boxes from procedural materials (no textures needed)."""
    import random

    rng = random.Random(7)
    for k in range(count):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        scene = bpy.context.scene
        scene.render.engine = "CYCLES"
        scene.cycles.samples, scene.cycles.use_denoising = 16, True
        scene.render.resolution_x, scene.render.resolution_y = 640, 480
        scene.render.image_settings.file_format = "JPEG"
        scene.render.image_settings.quality = 80
        world = bpy.data.worlds.new("w")
        scene.world = world
        world.node_tree.nodes["Background"].inputs[0].default_value = (0.6, 0.6, 0.65, 1)
        world.node_tree.nodes["Background"].inputs[1].default_value = 0.8

        def block(size, loc, rgb, rough=0.7):
            bpy.ops.mesh.primitive_cube_add(size=1, location=loc)
            obj = bpy.context.object
            obj.scale = size
            mat = bpy.data.materials.new("m")
            bsdf = mat.node_tree.nodes["Principled BSDF"]
            tex = mat.node_tree.nodes.new("ShaderNodeTexNoise")
            tex.inputs["Scale"].default_value = rng.uniform(2, 40)
            mix = mat.node_tree.nodes.new("ShaderNodeMix")
            mix.data_type = "RGBA"
            mix.inputs[0].default_value = 0.25
            mix.inputs[6].default_value = (*rgb, 1)
            mix.inputs[7].default_value = (*(c * 0.6 for c in rgb), 1)
            mat.node_tree.links.new(tex.outputs["Fac"], mix.inputs[0])
            mat.node_tree.links.new(mix.outputs[2], bsdf.inputs["Base Color"])
            bsdf.inputs["Roughness"].default_value = rough
            obj.data.materials.append(mat)

        wall = [rng.uniform(0.3, 0.8) for _ in range(3)]
        block((8, 0.1, 5), (0, 2, 2.0), wall)  # the wall fills the view
        block((8, 4, 0.1), (0, 0, -0.05), (0.35, 0.33, 0.3), 0.8)  # the floor
        for shelf in range(3):
            z, x0, length = 0.4 + shelf * 0.7, rng.uniform(-1.0, 1.0), rng.uniform(1.6, 2.6)
            block((length, 0.4, 0.04), (x0, 1.75, z), (0.45, 0.32, 0.2), 0.6)
            x = x0 - length / 2 + 0.1
            while x < x0 + length / 2 - 0.3:  # boxes and tins standing on the shelf, side by side
                w, h = rng.uniform(0.08, 0.3), rng.uniform(0.1, 0.4)
                block((w, 0.25, h), (x + w / 2, 1.75, z + 0.02 + h / 2),
                      [rng.uniform(0.05, 0.95) for _ in range(3)], rng.uniform(0.2, 0.9))
                x += w + rng.uniform(0.02, 0.3)
        bpy.ops.object.light_add(type="AREA", location=(rng.uniform(-2, 2), -1.0, 3.0))
        bpy.context.object.data.energy, bpy.context.object.data.size = 400, 3
        cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
        scene.collection.objects.link(cam)
        cam.location = (rng.uniform(-0.6, 0.6), -1.8, rng.uniform(0.9, 1.5))
        cam.rotation_euler = (math.radians(rng.uniform(82, 92)), 0, math.radians(rng.uniform(-6, 6)))
        cam.data.lens = rng.uniform(28, 40)
        scene.camera = cam
        scene.render.filepath = str(PLATES / f"workshop_{k}.jpg")
        bpy.ops.render.render(write_still=True)
        log.info("wrote %s", scene.render.filepath)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    PARTS.mkdir(parents=True, exist_ok=True)
    PLATES.mkdir(parents=True, exist_ok=True)
    if "--backplates-only" not in sys.argv:
        make_parts()
    backplates()


def make_parts() -> None:
    for make in (hex_nut, washer, hex_bolt, l_bracket, spur_gear, pipe_elbow):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        obj = make()
        save_glb(obj, PARTS / f"{obj.name}.glb")
        dims = obj.dimensions
        log.info("%s: %.3f x %.3f x %.3f m", obj.name, *dims)


if __name__ == "__main__":
    main()
