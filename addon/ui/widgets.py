"""Drawing a stored recipe field, whatever its widget, with its problems shown in place."""
from __future__ import annotations

import json

import bpy

from ..core import schema
from ..core.schema import FieldSpec
from .. import storage

LIST_EDIT = "synthfarm.list_edit"
_VALIDATION: dict = {}


def recipe_problems(scene) -> list[tuple[str, str]]:
    """The scene recipe's problems, recomputed only when its data changed (panels draw often)."""
    settings = scene.synthfarm
    if not settings.recipe.kind:
        return []
    key = json.dumps([storage.recipe_data(settings), str(storage.scene_base_dir(scene))], sort_keys=True, default=str)
    if _VALIDATION.get("key") != key:
        _VALIDATION.update(key=key, problems=storage.problems(scene))
    return _VALIDATION["problems"]


def problems_at(problems, prefix: str) -> list[str]:
    """Messages whose path is ``prefix`` or lies under it (``prefix.x`` or ``prefix[i]``)."""
    return [msg for path, msg in problems
            if path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "[")]


def draw_problems(layout, messages: list[str], limit: int = 6) -> None:
    for msg in messages[:limit]:
        row = layout.row()
        row.alert = True
        row.label(text=msg, icon="ERROR")
    if len(messages) > limit:
        layout.label(text=f"... and {len(messages) - limit} more (Validate lists them all)")


def list_buttons(layout, path: str, index: int, active: str = "", add: bool = True) -> None:
    """Add/remove/duplicate/move buttons for the collection at ``path`` (from the scene)."""
    col = layout.column(align=True)
    for action, icon in (("ADD", "ADD"), ("REMOVE", "REMOVE"), ("DUPLICATE", "DUPLICATE"),
                         ("UP", "TRIA_UP"), ("DOWN", "TRIA_DOWN")):
        if action == "ADD" and not add:
            continue
        op = col.operator(LIST_EDIT, text="", icon=icon)
        op.path, op.action, op.index, op.active = path, action, index, active


def _ref_search(layout, data, prop: str, ref: str | None, scene, text: str = ""):
    sources = {"generator": (scene.synthfarm, "generators"), "sensor": (scene.synthfarm, "sensors"),
               "object": (scene, "objects"), "collection": (bpy.data, "collections"),
               "parameter": (scene.synthfarm, "parameters")}
    if ref in sources:
        layout.prop_search(data, prop, *sources[ref], text=text)
    else:
        layout.prop(data, prop, text=text)


def draw_value(layout, field, spec: FieldSpec, scene) -> None:
    """A value field: its form (constant, uniform, ..., parameter) and the arguments of that form."""
    row = layout.row(align=True)
    row.prop(field, "mode", text="")
    if field.mode == "param":
        _ref_search(row, field, "param", "parameter", scene)
        return
    names = schema.ARG_NAMES[field.mode]
    col = layout.column(align=True)
    count = len(field.args)
    if field.mode == "normal":
        col.prop(field, "use_clip")
    if field.mode == "choice":
        col.prop(field, "use_weights")
    for k, arg in enumerate(field.args):
        slot = storage.arg_slots(spec, field.mode, field.use_clip, count)[k] if k < count else "f"
        label = names[k] if k < len(names) else ("clip low", "clip high")[k - 2] if field.mode == "normal" \
            else f"option {k + 1}"
        line = col.row(align=True)
        line.prop(arg, "word" if slot == "text" and spec.domain.choices else slot, text=label)
        if field.mode == "choice":
            if field.use_weights:
                line.prop(arg, "weight", text="")
            op = line.operator(LIST_EDIT, text="", icon="X")
            op.path, op.action, op.index = f"{field.path_from_id()}.args", "REMOVE", k
    if field.mode == "choice":
        op = col.operator(LIST_EDIT, text="Add option", icon="ADD")
        op.path, op.action, op.index = f"{field.path_from_id()}.args", "ADD", count - 1


def draw_field(layout, field, spec: FieldSpec, scene, problems: list[str], enabled: bool | None = None,
               owner: tuple[str, str] = ("", "recipe")) -> None:
    """One field: its name (whose tooltip says what it means and takes), its widget, its problems."""
    box = layout.column()
    head = box.row(align=True)
    if spec.optional and spec.part != 1:
        head.prop(field, "is_set", text="")
    op = head.operator("synthfarm.field_help", text=spec.label, emboss=False)
    op.section, op.kind, op.key = owner[0], owner[1], spec.id
    body = box.column()
    body.enabled = (field.is_set or not spec.optional) if enabled is None else enabled
    widget = spec.widget
    if widget == "value":
        draw_value(body, field, spec, scene)
    elif widget == "enum":
        body.prop(field, "word", text="")
    elif widget == "text":
        _ref_search(body, field, "text", spec.ref, scene)
    elif widget == "path":
        body.prop(field, "path", text="")
    elif widget == "bool":
        body.prop(field, "flag", text=spec.label)
    elif widget == "int":
        body.prop(field, "integer", text="")
    elif widget == "float":
        body.prop(field, "number", text="")
    elif widget == "int2":
        body.row(align=True).prop(field, "int2", text="")
    elif widget == "float2":
        body.row(align=True).prop(field, "float2", text="")
    elif widget == "point":
        body.prop(field, "use_name")
        if field.use_name:
            _ref_search(body, field, "text", "generator", scene)
        else:
            body.row(align=True).prop(field, "point", text="")
    elif widget == "flags":
        body.column(align=True).prop(field, "flags")
    elif widget in ("names", "weights"):
        path = f"{field.path_from_id()}.items"
        for k, item in enumerate(field.items):
            line = body.row(align=True)
            _ref_search(line, item, "text", spec.ref, scene)
            if widget == "weights":
                line.prop(item, "weight", text="")
            op = line.operator(LIST_EDIT, text="", icon="X")
            op.path, op.action, op.index = path, "REMOVE", k
        op = body.operator(LIST_EDIT, text="Add", icon="ADD")
        op.path, op.action, op.index = path, "ADD", len(field.items) - 1
    draw_problems(box, problems)


def draw_component(layout, component, scene, problems, prefix: str) -> None:
    """Every field of a component (or of the recipe's own record) with its problems."""
    specs = storage.specs_of(component)
    pair_set = True
    for field in component.fields:
        spec = specs.get(field.key)
        if spec is None:
            continue
        if spec.part == 0:
            pair_set = field.is_set
        where = f"{prefix}.{spec.id}" if prefix else spec.id
        draw_field(layout, field, spec, scene, problems_at(problems, where),
                   enabled=pair_set if spec.part == 1 else None, owner=(prefix.split("[")[0], component.kind))
