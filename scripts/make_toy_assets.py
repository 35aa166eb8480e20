"""Make the example assets (toys, an open box, a material library) with the bpy module.

    python scripts/make_toy_assets.py

Everything is modelled here from primitives (CC0-1.0, see assets/README.md). Each toy is saved in a
different format so that every loader is exercised: .blend, .obj (+ .mtl), .glb, .ply, .stl.

Deterministic: no randomness, and faces are put in a canonical order (Blender 5.0 builds some
primitives, e.g. the UV sphere, with a face order that changes from run to run). The text formats and
the .glb come out byte-identical on every run; .blend files hold memory addresses, so they differ in a
few bytes from run to run while their content is the same.
"""
from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path

# `import bpy` writes Blender's user configuration: keep it away from the developer's own set-up.
_HOME = tempfile.mkdtemp(prefix="synthfarm-make-assets-")
for _var in ("BLENDER_USER_RESOURCES", "BLENDER_USER_CONFIG", "BLENDER_USER_SCRIPTS"):
    os.environ.setdefault(_var, os.path.join(_HOME, _var.lower()))

import bpy  # noqa: E402  (first: it puts Blender's own modules such as addon_utils on sys.path)
import addon_utils  # noqa: E402
import bmesh  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TOYS, BOX = ROOT / "assets" / "toys", ROOT / "assets" / "toybox"
DUCK_SCALE = 0.95
log = logging.getLogger("make_toy_assets")


def material(name: str, rgb, roughness: float = 0.5, metallic: float = 0.0):
    mat = bpy.data.materials.get(name) or bpy.data.materials.new(name)
    bsdf = next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Base Color"].default_value = (*rgb, 1.0)
    bsdf.inputs["Roughness"].default_value = roughness
    bsdf.inputs["Metallic"].default_value = metallic
    mat.diffuse_color = (*rgb, 1.0)
    mat.roughness, mat.metallic = roughness, metallic
    return mat


def part(op, mat, **kw):
    """Add one primitive with ``op`` and give it ``mat``."""
    op(**kw)
    obj = bpy.context.active_object
    obj.data.materials.append(mat)
    return obj


def canonical_faces(mesh) -> None:
    """Sort faces by their vertex indices, so the same model always has the same face order."""
    bm = bmesh.new()
    bm.from_mesh(mesh)
    bm.faces.ensure_lookup_table()
    order = sorted(bm.faces, key=lambda f: (sorted(v.index for v in f.verts), f.material_index))
    rank = {face.index: r for r, face in enumerate(order)}
    bm.faces.sort(key=lambda f: rank[f.index])
    bm.to_mesh(mesh)
    bm.free()


def join(parts, name: str, smooth: bool = False, scale: float = 1.0):
    """Join ``parts`` into one object called ``name`` with all transforms applied."""
    bpy.ops.object.select_all(action="DESELECT")
    for p in parts:
        p.select_set(True)
    bpy.context.view_layer.objects.active = parts[0]
    if len(parts) > 1:
        bpy.ops.object.join()
    obj = bpy.context.active_object
    obj.name = obj.data.name = name
    obj.scale = [s * scale for s in obj.scale]
    bpy.ops.object.transform_apply(location=True, rotation=True, scale=True)
    canonical_faces(obj.data)
    if smooth:
        bpy.ops.object.shade_smooth()
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
    return join([body, head, beak], "duck", smooth=True, scale=DUCK_SCALE)


def block():
    obj = part(bpy.ops.mesh.primitive_cube_add, material("block_blue", (0.1, 0.3, 0.85)), size=0.05,
               location=(0, 0, 0.025))
    bevel = obj.modifiers.new("bevel", "BEVEL")
    bevel.width, bevel.segments = 0.004, 2
    bpy.ops.object.modifier_apply(modifier="bevel")
    return join([obj], "block")


def ball():
    obj = part(bpy.ops.mesh.primitive_uv_sphere_add, material("ball_red", (0.85, 0.1, 0.1), 0.3),
               radius=0.035, location=(0, 0, 0.035), segments=24, ring_count=12)
    return join([obj], "ball", smooth=True)


def ring():
    obj = part(bpy.ops.mesh.primitive_torus_add, material("ring_green", (0.1, 0.7, 0.25)), major_radius=0.035,
               minor_radius=0.012, major_segments=32, minor_segments=12, location=(0, 0, 0.012))
    return join([obj], "ring", smooth=True)


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
    cardboard = material("box_cardboard", (0.55, 0.4, 0.22), 0.8)
    w, d, h, t = 0.6, 0.4, 0.2, 0.01
    slabs = [((0, 0, t / 2), (w, d, t)), ((0, d / 2 - t / 2, h / 2), (w, t, h)), ((0, -d / 2 + t / 2, h / 2), (w, t, h)),
             ((w / 2 - t / 2, 0, h / 2), (t, d, h)), ((-w / 2 + t / 2, 0, h / 2), (t, d, h))]
    parts = []
    for loc, size in slabs:
        slab = part(bpy.ops.mesh.primitive_cube_add, cardboard, size=1, location=loc)
        slab.scale = size
        parts.append(slab)
    return join(parts, "bin")


def paint_vertex_colors(obj) -> None:
    """Store each face's material colour as a face-corner colour (PLY keeps colours, not materials)."""
    mesh = obj.data
    attr = mesh.color_attributes.new("Col", "BYTE_COLOR", "CORNER")
    colours = [tuple(m.diffuse_color) for m in mesh.materials]
    for poly in mesh.polygons:
        for loop in poly.loop_indices:
            attr.data[loop].color = colours[poly.material_index]


def select_only(obj) -> None:
    bpy.ops.object.select_all(action="DESELECT")
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj


def add_keypoints(obj, points) -> list:
    """Empties named kp:<name> parented to ``obj`` (see addon/engine/keypoints.py)."""
    empties = []
    for name, location in points:
        empty = bpy.data.objects.new(f"kp:{name}", None)
        bpy.context.scene.collection.objects.link(empty)
        empty.location = [c * DUCK_SCALE for c in location]
        empty.parent = obj
        empties.append(empty)
    return empties


def enable_gltf() -> None:
    if not addon_utils.check("io_scene_gltf2")[1]:
        addon_utils.enable("io_scene_gltf2", default_set=False)
    if not hasattr(bpy.types, "EXPORT_SCENE_OT_gltf"):
        raise RuntimeError("the glTF add-on (io_scene_gltf2) could not be enabled: this Blender build lacks it")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    TOYS.mkdir(parents=True, exist_ok=True)
    BOX.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    enable_gltf()
    made = {name: make() for name, make in
            (("duck", duck), ("block", block), ("ball", ball), ("ring", ring), ("rocket", rocket), ("car", car))}
    for obj in made.values():
        obj.location = (0, 0, 0)
    points = (("beak", (0.07, 0.0, 0.072)), ("crown", (0.035, 0.0, 0.099)), ("tail", (-0.052, 0.0, 0.04)))
    duck_points = add_keypoints(made["duck"], points)
    blend_ids = {made["duck"], made["duck"].data, *duck_points}
    bpy.data.libraries.write(str(TOYS / "duck.blend"), blend_ids, compress=True)
    paint_vertex_colors(made["rocket"])
    # OBJ and glTF are Y-up by convention (Blender converts on export and import); PLY and STL stay Z-up.
    exports = {
        "block": ("obj", bpy.ops.wm.obj_export, dict(export_selected_objects=True, export_materials=True)),
        "ring": ("obj", bpy.ops.wm.obj_export, dict(export_selected_objects=True, export_materials=True)),
        "ball": ("glb", bpy.ops.export_scene.gltf, dict(export_format="GLB", use_selection=True)),
        "rocket": ("ply", bpy.ops.wm.ply_export, dict(export_selected_objects=True, up_axis="Z", forward_axis="Y",
                                                      export_colors="SRGB", export_uv=False, ascii_format=False)),
        "car": ("stl", bpy.ops.wm.stl_export, dict(export_selected_objects=True, up_axis="Z", forward_axis="Y")),
    }
    for name, (ext, op, kw) in exports.items():
        select_only(made[name])
        op(filepath=str(TOYS / f"{name}.{ext}"), **kw)
    box = open_box()
    select_only(box)
    bpy.ops.wm.obj_export(filepath=str(BOX / "bin.obj"), export_selected_objects=True, export_materials=True)
    library = [material("wood", (0.45, 0.3, 0.15), 0.7), material("plastic_red", (0.8, 0.05, 0.05), 0.3),
               material("metal", (0.8, 0.8, 0.82), 0.25, 1.0), material("rubber", (0.05, 0.05, 0.05), 0.95)]
    bpy.data.libraries.write(str(BOX / "materials.blend"), set(library), compress=True)
    total = 0
    for path in sorted(list(TOYS.iterdir()) + list(BOX.iterdir())):
        total += path.stat().st_size
        log.info("%-28s %7d bytes", path.relative_to(ROOT), path.stat().st_size)
    log.info("%-28s %7d bytes", "total", total)


if __name__ == "__main__":
    main()
