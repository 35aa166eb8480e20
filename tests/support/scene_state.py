"""Everything of a user's Blender scene that an add-on operation could change, as plain comparable data.

Read generically from RNA: every property of every object (transform channels, matrices, visibility,
parents, custom properties), of camera and light data, of the world and its nodes, of the scene's render,
Cycles, colour management, unit and view-layer settings, the selection and active object, the frame, the
names of every datablock, and Cycles' device preferences. Floats are compared exactly (no rounding)."""
from __future__ import annotations

import bpy

SKIP = {"rna_type", "bl_rna", "is_evaluated", "original", "users", "session_uid", "is_runtime_data",
        "use_fake_user", "is_dirty", "is_missing", "tag", "is_embedded_data", "is_editmode", "mode",
        "preview", "library_weak_reference", "override_library", "asset_data", "name_full", "id_type",
        "is_library_indirect", "library", "use_extra_user", "is_editable"}
OUR_PROPS = ("synthfarm", "synthfarm_farm")  # the add-on's own settings on the scene


def _value(value):
    if hasattr(value, "name") and isinstance(value, bpy.types.ID):
        return ("ID", value.name)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "__len__") and not isinstance(value, bpy.types.bpy_struct):
        return tuple(_value(v) for v in value)
    return repr(value)


def rna(struct, depth: int = 0, skip: set = frozenset()) -> dict:
    """The values of every property of ``struct``; nested structs down to ``depth`` (IDs by name)."""
    if struct is None:
        return None
    out = {}
    for prop in struct.bl_rna.properties:
        key = prop.identifier
        if key in SKIP or key in skip:
            continue
        try:
            value = getattr(struct, key)
        except (AttributeError, RuntimeError, TypeError):
            continue
        if prop.type == "POINTER":
            if isinstance(value, bpy.types.ID) or value is None:
                out[key] = _value(value)
            elif depth > 0:
                out[key] = rna(value, depth - 1)
        elif prop.type == "COLLECTION":
            items = list(value)
            if items and all(isinstance(v, bpy.types.ID) for v in items):
                out[key] = [v.name for v in items]
            elif depth > 0:
                out[key] = [rna(v, depth - 1) for v in items]
        else:
            out[key] = _value(value)
    return out


def _custom(id_) -> dict:
    return {k: _value(id_[k]) for k in id_.keys() if k not in OUR_PROPS}


def _node_tree(tree) -> dict | None:
    if tree is None:
        return None
    return {node.name: {"type": node.bl_idname,
                        "inputs": [_value(getattr(s, "default_value", None)) for s in node.inputs],
                        "links": sorted(f"{l.from_node.name}:{l.from_socket.identifier}>{l.to_node.name}:"
                                        f"{l.to_socket.identifier}" for l in tree.links if l.to_node == node)}
            for node in tree.nodes}


def datablock_names() -> dict[str, list[str]]:
    out = {}
    for attr in dir(bpy.data):
        coll = getattr(bpy.data, attr, None)
        if isinstance(coll, bpy.types.bpy_prop_collection) and attr not in ("window_managers", "screens",
                                                                              "workspaces", "all_ids"):
            out[attr] = sorted(id_.name for id_ in coll if isinstance(id_, bpy.types.ID))
    return out


def cycles_preferences() -> dict:
    prefs = bpy.context.preferences.addons["cycles"].preferences
    return {"compute_device_type": prefs.compute_device_type,
            "devices": [(d.name, d.type, d.use) for d in prefs.devices]}


def _rigid_body_world(world):
    """The world's settings, its cache's frame range and whether it is baked. The cache's status line is left
    out: any change to a rigid body marks an unbaked cache "outdated" (it is simulated again on playback)."""
    if world is None:
        return None
    cache = world.point_cache
    return {**rna(world), "cache": {"frames": (cache.frame_start, cache.frame_end), "baked": cache.is_baked}}


def user_state(scene=None, *, ignore_images: tuple[str, ...] = ()) -> dict:
    """The whole user-visible state of ``scene`` (default: the context's) and of bpy.data."""
    scene = scene or bpy.context.scene
    layer = bpy.context.view_layer
    objects = {}
    for obj in scene.objects:
        objects[obj.name] = {
            "object": rna(obj, skip={"bound_box"}), "matrix_world": _value([tuple(r) for r in obj.matrix_world]),
            "selected": obj.select_get(), "hidden": obj.hide_get(), "custom": _custom(obj),
            "data": rna(obj.data) if obj.type in ("CAMERA", "LIGHT") else (obj.data.name if obj.data else None),
            "modifiers": [rna(m) for m in obj.modifiers],
            "slots": [(s.link, s.material.name if s.material else None) for s in obj.material_slots]}
    names = datablock_names()
    names["images"] = [n for n in names.get("images", []) if n not in ignore_images]
    return {
        "objects": objects,
        "active": layer.objects.active.name if layer.objects.active else None,
        "scene": rna(scene, skip={"synthfarm", "synthfarm_farm", "objects", "sequence_editor", "tool_settings",
                                  "statistics"}),
        "scene_custom": _custom(scene),
        "render": rna(scene.render, depth=2), "cycles": rna(scene.cycles), "view": rna(scene.view_settings, 1),
        "display": rna(scene.display_settings), "units": rna(scene.unit_settings),
        "view_layers": [rna(v, skip={"objects", "depsgraph", "active_layer_collection", "layer_collection"})
                        for v in scene.view_layers],
        "rigid_body": _rigid_body_world(scene.rigidbody_world),
        "world": {"world": rna(scene.world), "nodes": _node_tree(scene.world.node_tree)} if scene.world else None,
        "collections": {c.name: {"objects": sorted(o.name for o in c.objects), "children": sorted(
            x.name for x in c.children), "hide_render": c.hide_render, "custom": _custom(c)} for c in bpy.data.collections},
        "datablocks": names,
        "cycles_preferences": cycles_preferences(),
    }


def differences(before, after, path: str = "") -> list[str]:
    """Where two states differ, as readable paths (empty when equal)."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after), key=str):
            if key not in after:
                out.append(f"{path}.{key}: removed (was {before[key]!r})"[:300])
            elif key not in before:
                out.append(f"{path}.{key}: added ({after[key]!r})"[:300])
            else:
                out += differences(before[key], after[key], f"{path}.{key}")
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [d for i, (a, b) in enumerate(zip(before, after)) for d in differences(a, b, f"{path}[{i}]")]
    return [] if before == after else [f"{path}: {before!r} -> {after!r}"[:300]]
