"""Make the example assets (toys, an open box, a material library) with the bpy module.

    python scripts/make_toy_assets.py

Deterministic; the files it writes under assets/ are committed. Each toy is saved in a different
format so that every loader is exercised: .blend, .obj (+ .mtl), .glb, .ply, .stl.
"""
from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path

import bpy

ROOT = Path(__file__).resolve().parent.parent
TOYS, BOX = ROOT / "assets" / "toys", ROOT / "assets" / "toybox"
log = logging.getLogger("make_toy_assets")


def material(name: str, rgb, roughness: float = 0.5, metallic: float = 0.0):
    mat = bpy.data.materials.get(name) or bpy.data.materials.new(name)
    bsdf = next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Base Color"].default_value = (*rgb, 1.0)
    bsdf.inputs["Roughness"].default_value = roughness
    bsdf.inputs["Metallic"].default_value = metallic
    mat.diffuse_color = (*rgb, 1.0)
    return mat


def part(op, mat, **kw):
    op(**kw)
    obj = bpy.context.active_object
    obj.data.materials.append(mat)
    return obj


def join(parts, name):
    bpy.ops.object.select_all(action="DESELECT")
    for p in parts:
        p.select_set(True)
    bpy.context.view_layer.objects.active = parts[0]
    bpy.ops.object.join()
    obj = bpy.context.active_object
    obj.name = obj.data.name = name
    bpy.ops.object.transform_apply(location=True, rotation=True, scale=True)
    bpy.ops.object.shade_smooth() if name in ("duck", "ball") else None
    return obj


def duck():
    yellow, orange = material("duck_yellow", (0.9, 0.75, 0.1)), material("duck_beak", (0.9, 0.35, 0.05))
    body = part(bpy.ops.mesh.primitive_uv_sphere_add, yellow, radius=0.04, location=(0, 0, 0.035),
                segments=24, ring_count=12)
    body.scale = (1.3, 1.0, 0.85)
    head = part(bpy.ops.mesh.primitive_uv_sphere_add, yellow, radius=0.024, location=(0.035, 0, 0.075),
                segments=20, ring_count=10)
    beak = part(bpy.ops.mesh.primitive_cone_add, orange, radius1=0.01, depth=0.02, vertices=12,
                location=(0.062, 0, 0.072), rotation=(0, math.pi / 2, 0))
    return join([body, head, beak], "duck")


def block():
    obj = part(bpy.ops.mesh.primitive_cube_add, material("block_blue", (0.1, 0.3, 0.85)), size=0.05,
               location=(0, 0, 0.025))
    bevel = obj.modifiers.new("bevel", "BEVEL")
    bevel.width, bevel.segments = 0.004, 2
    bpy.ops.object.modifier_apply(modifier="bevel")
    return join([obj], "block")


def ball():
    return join([part(bpy.ops.mesh.primitive_uv_sphere_add, material("ball_red", (0.85, 0.1, 0.1), 0.3),
                      radius=0.035, location=(0, 0, 0.035), segments=24, ring_count=12)], "ball")


def ring():
    obj = part(bpy.ops.mesh.primitive_torus_add, material("ring_green", (0.1, 0.7, 0.25)), major_radius=0.035,
               minor_radius=0.012, major_segments=32, minor_segments=12, location=(0, 0, 0.012))
    return join([obj], "ring")


def rocket():
    white, red = material("rocket_white", (0.9, 0.9, 0.9), 0.3), material("rocket_red", (0.8, 0.05, 0.1))
    parts = [part(bpy.ops.mesh.primitive_cylinder_add, white, radius=0.015, depth=0.07, vertices=16,
                  location=(0, 0, 0.035)),
             part(bpy.ops.mesh.primitive_cone_add, red, radius1=0.015, depth=0.03, vertices=16, location=(0, 0, 0.085))]
    for k in range(3):
        a = 2 * math.pi * k / 3
        fin = part(bpy.ops.mesh.primitive_cube_add, red, size=1, location=(0.02 * math.cos(a), 0.02 * math.sin(a), 0.012),
                   rotation=(0, 0, a))
        fin.scale = (0.02, 0.003, 0.024)
        parts.append(fin)
    return join(parts, "rocket")


def car():
    body_mat, wheel_mat = material("car_orange", (0.95, 0.45, 0.05)), material("car_tyre", (0.03, 0.03, 0.03), 0.9)
    body = part(bpy.ops.mesh.primitive_cube_add, body_mat, size=1, location=(0, 0, 0.03))
    body.scale = (0.1, 0.05, 0.03)
    cabin = part(bpy.ops.mesh.primitive_cube_add, body_mat, size=1, location=(-0.01, 0, 0.055))
    cabin.scale = (0.05, 0.045, 0.025)
    wheels = [part(bpy.ops.mesh.primitive_cylinder_add, wheel_mat, radius=0.014, depth=0.01, vertices=16,
                   location=(x, y, 0.014), rotation=(math.pi / 2, 0, 0))
              for x in (-0.032, 0.032) for y in (-0.028, 0.028)]
    return join([body, cabin, *wheels], "car")


def open_box():
    """A 0.6 x 0.4 x 0.2 m box with a floor and four 1 cm walls, open at the top (a concave container)."""
    wood = material("box_cardboard", (0.55, 0.4, 0.22), 0.8)
    w, d, h, t = 0.6, 0.4, 0.2, 0.01
    slabs = [((0, 0, t / 2), (w, d, t)), ((0, d / 2 - t / 2, h / 2), (w, t, h)), ((0, -d / 2 + t / 2, h / 2), (w, t, h)),
             ((w / 2 - t / 2, 0, h / 2), (t, d, h)), ((-w / 2 + t / 2, 0, h / 2), (t, d, h))]
    parts = []
    for loc, size in slabs:
        slab = part(bpy.ops.mesh.primitive_cube_add, wood, size=1, location=loc)
        slab.scale = size
        parts.append(slab)
    return join(parts, "bin")


def only(obj):
    bpy.ops.object.select_all(action="DESELECT")
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj


def save_blend(objects, path: Path):
    bpy.data.libraries.write(str(path), set(objects) | {o.data for o in objects if o.data}, compress=True)


def main():
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    TOYS.mkdir(parents=True, exist_ok=True)
    BOX.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    made = {name: make() for name, make in
            (("duck", duck), ("block", block), ("ball", ball), ("ring", ring), ("rocket", rocket), ("car", car))}
    for obj in made.values():
        obj.location = (0, 0, 0)
    # the duck defines keypoints: empties named kp:<name> parented to it (see addon/engine/keypoints.py)
    duck_points = []
    for name, location in (("beak", (0.07, 0.0, 0.072)), ("crown", (0.035, 0.0, 0.099)), ("tail", (-0.052, 0.0, 0.04))):
        empty = bpy.data.objects.new(f"kp:{name}", None)
        bpy.context.scene.collection.objects.link(empty)
        empty.location = location
        empty.parent = made["duck"]
        duck_points.append(empty)
    save_blend([made["duck"], *duck_points], TOYS / "duck.blend")
    # OBJ files are Y-up by convention (Blender converts on export and import); PLY and STL keep Z up.
    exports = {"block": ("obj", bpy.ops.wm.obj_export, dict(export_selected_objects=True, export_materials=True)),
               "ring": ("obj", bpy.ops.wm.obj_export, dict(export_selected_objects=True)),
               "ball": ("glb", bpy.ops.export_scene.gltf, dict(export_format="GLB", use_selection=True)),
               "rocket": ("ply", bpy.ops.wm.ply_export, dict(export_selected_objects=True, up_axis="Z", forward_axis="Y")),
               "car": ("stl", bpy.ops.wm.stl_export, dict(export_selected_objects=True, up_axis="Z", forward_axis="Y"))}
    import addon_utils

    addon_utils.enable("io_scene_gltf2", default_set=False)
    for name, (ext, op, kw) in exports.items():
        only(made[name])
        op(filepath=str(TOYS / f"{name}.{ext}"), **kw)
    box = open_box()
    only(box)
    bpy.ops.wm.obj_export(filepath=str(BOX / "bin.obj"), export_selected_objects=True)
    library = [material("wood", (0.45, 0.3, 0.15), 0.7), material("plastic_red", (0.8, 0.05, 0.05), 0.3),
               material("metal", (0.8, 0.8, 0.82), 0.25, 1.0), material("rubber", (0.05, 0.05, 0.05), 0.95)]
    bpy.data.libraries.write(str(BOX / "materials.blend"), set(library), compress=True)
    for path in sorted(list(TOYS.iterdir()) + list(BOX.iterdir())):
        log.info("%-28s %7d bytes", path.relative_to(ROOT), path.stat().st_size)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as home:
        main()
