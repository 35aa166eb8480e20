"""Drawing a stored recipe field, whatever its widget: one row per field (its name, its value in the field's
unit, and the value's form as a small dropdown), lists folded to a summary, problems shown in place."""
from __future__ import annotations

import json

import bpy

from ..core import schema
from ..core.schema import FieldSpec
from .. import storage

LIST_EDIT = "synthfarm.list_edit"
NAME_SHARE = 0.33  # of a field row's width, for the field's name (the rest for the value: numbers need it)
FORM_WIDTH = 1.3  # UI units of the form dropdown (an icon and its arrow)
FOLD_AFTER = 3  # lists longer than this start folded to a summary
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


def item_button(layout, path: str, action: str, index: int, text: str = "") -> None:
    """One add (after ``index``) or remove (of ``index``) button of an inner list (options, targets...)."""
    op = layout.operator(LIST_EDIT, text=text, icon="ADD" if action == "ADD" else "REMOVE")
    op.path, op.action, op.index = path, action, index


def _ref_search(layout, data, prop: str, ref: str | None, scene, text: str = ""):
    sources = {"generator": (scene.synthfarm, "generators"), "sensor": (scene.synthfarm, "sensors"),
               "object": (scene, "objects"), "collection": (bpy.data, "collections"),
               "parameter": (scene.synthfarm, "parameters")}
    if ref in sources:
        layout.prop_search(data, prop, *sources[ref], text=text)
    else:
        layout.prop(data, prop, text=text)


def field_row(layout, optional_of=None):
    """A row split into the field's name (and its on/off box) and the part its value goes in."""
    split = layout.row(align=True).split(factor=NAME_SHARE, align=True)
    name = split.row(align=True)
    if optional_of is not None:
        name.prop(optional_of, "is_set", text="")
    return name, split.row(align=True)


def _arg_prop(layout, arg, spec: FieldSpec, slot: str, text: str = "") -> None:
    if slot == "text" and spec.domain.choices:
        slot = "word"
    layout.prop(arg, storage.view_of(arg, slot, spec.unit), text=text)


def _folded(field, count: int) -> bool:
    return count > FOLD_AFTER and not field.show_expanded


def _fold_toggle(layout, field, count: int) -> None:
    if count > FOLD_AFTER:
        layout.prop(field, "show_expanded", text="", emboss=False,
                    icon="DISCLOSURE_TRI_DOWN" if field.show_expanded else "DISCLOSURE_TRI_RIGHT")


def draw_value(layout, value, field, spec: FieldSpec, scene) -> None:
    """A value field: its arguments in ``value`` (the field's row), the form as an icon dropdown at its end;
    what does not fit one row (vectors of a distribution, clip bounds, choice options) goes below."""
    mode, args = field.mode, list(field.args)
    slots = storage.arg_slots(spec, mode, field.use_clip, len(args))
    names = schema.ARG_NAMES[mode]
    vector = spec.domain.kind == "vector"
    below = layout.column(align=True)
    if mode == "param":
        _ref_search(value, field, "param", "parameter", scene)
    elif mode == "choice":
        value.label(text=f"{len(args)} option{'s' * (len(args) != 1)}" + (", weighted" if field.use_weights else ""))
        value.prop(field, "use_weights", text="", icon="MOD_VERTEX_WEIGHT")
        _fold_toggle(value, field, len(args))
        path = f"{field.path_from_id()}.args"
        if not _folded(field, len(args)):
            for k, arg in enumerate(args):
                _, line = field_row(below)
                _arg_prop(line, arg, spec, slots[k])
                if field.use_weights:
                    line.prop(arg, "weight", text="")
                item_button(line, path, "REMOVE", k)
        item_button(value, path, "ADD", len(args) - 1)
    else:
        main = args[:len(names)]
        if vector and len(main) > 1:  # one row per vector argument, named
            for k, arg in enumerate(main):
                _, line = field_row(below) if k else (None, value)
                _arg_prop(line, arg, spec, slots[k])
                line.label(text=names[k])
        else:
            for k, arg in enumerate(main):  # in the form's order (its tooltip names them): no room for labels
                _arg_prop(value, arg, spec, slots[k])
        if mode == "normal":
            value.prop(field, "use_clip", text="", icon="ARROW_LEFTRIGHT")
            if field.use_clip:
                name, line = field_row(below)
                name.label(text="clipped to")
                for k, arg in enumerate(args[2:4], start=2):
                    _arg_prop(line, arg, spec, slots[k])
    form = value.row(align=True)
    form.ui_units_x = FORM_WIDTH
    form.prop(field, "mode", text="", icon_only=True)


def _summary(words: list[str], limit: int = 4) -> str:
    if not words:
        return "(none)"
    return ", ".join(words[:limit]) + (f" +{len(words) - limit}" if len(words) > limit else "")


def draw_list(layout, value, field, spec: FieldSpec, scene) -> None:
    """A list of names or of weighted file stems: folded to a summary once it is long."""
    items = list(field.items)
    path = f"{field.path_from_id()}.items"
    below = layout.column(align=True)
    if _folded(field, len(items)):
        value.label(text=_summary([item.text for item in items]))
    elif not items:
        value.label(text="(none)")
    else:
        for k, item in enumerate(items):
            _, line = (None, value) if k == 0 else field_row(below)
            _ref_search(line, item, "text", spec.ref, scene)
            if spec.widget == "weights":
                line.prop(item, "weight", text="")
            item_button(line, path, "REMOVE", k)
    _fold_toggle(value, field, len(items))
    item_button(value, path, "ADD", len(items) - 1)


def draw_flags(layout, value, field, spec: FieldSpec) -> None:
    chosen = [schema.display_name(item.text) for item in field.items]
    value.label(text=_summary(chosen, limit=3))
    value.prop(field, "show_expanded", text="", emboss=False,
               icon="DISCLOSURE_TRI_DOWN" if field.show_expanded else "DISCLOSURE_TRI_RIGHT")
    if field.show_expanded:
        layout.grid_flow(columns=2, even_columns=True, align=True).prop(field, "flags")


def draw_field(layout, field, spec: FieldSpec, scene, problems: list[str], enabled: bool | None = None,
               owner: tuple[str, str] = ("", "recipe")) -> None:
    """One field: its name (whose tooltip says what it means and takes), its value, its problems."""
    box = layout.column(align=True)
    name, value = field_row(box, field if spec.optional and spec.part != 1 else None)
    op = name.operator("synthfarm.field_help", text=spec.label, emboss=False)
    op.section, op.kind, op.key = owner[0], owner[1], spec.id
    value.enabled = (field.is_set or not spec.optional) if enabled is None else enabled
    widget = spec.widget
    if widget == "value":
        draw_value(box, value, field, spec, scene)
    elif widget == "enum":
        value.prop(field, "word", text="")
    elif widget == "text":
        _ref_search(value, field, "text", spec.ref, scene)
    elif widget == "path":
        value.prop(field, "path", text="")
    elif widget == "bool":
        value.prop(field, "flag", text="")
    elif widget == "int":
        value.prop(field, "integer", text="")
    elif widget == "float":
        value.prop(field, storage.view_of(field, "number", spec.unit), text="")
    elif widget == "int2":
        value.prop(field, "int2", text="")
    elif widget == "float2":
        value.prop(field, storage.view_of(field, "float2", spec.unit), text="")
    elif widget == "point":
        value.prop(field, "use_name", text="", icon="OBJECT_DATA" if field.use_name else "EMPTY_AXIS")
        if field.use_name:
            _ref_search(value, field, "text", "generator", scene)
        else:
            value.prop(field, storage.view_of(field, "point", spec.unit), text="")
    elif widget == "flags":
        draw_flags(box, value, field, spec)
    elif widget in ("names", "weights"):
        draw_list(box, value, field, spec, scene)
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
