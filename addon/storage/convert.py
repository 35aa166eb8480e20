"""The scene's stored recipe (:mod:`.properties`) to and from the Recipe model, exactly.

Blender stores floats in single precision, so numbers come back as the shortest decimal that single
precision holds (0.42 stays 0.42; a number with more than 7 significant digits is rounded to 7).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import bpy

from ..core import schema
from ..core.recipe import Parameter, Recipe, RecipeError, map_paths, recipe_from_data
from ..core.schema import SECTIONS, FieldSpec
from ..core.values import DISTRIBUTIONS, PARAM_REF
from .properties import arg_slots, f32, specs_of


def _set_slot(arg, slot: str, value: Any) -> None:
    if slot in ("v", "c"):
        value = list(value) if isinstance(value, (list, tuple)) else [value] * 3
    setattr(arg, slot, value)


def _get_slot(arg, slot: str) -> Any:
    value = getattr(arg, slot)
    if slot in ("v", "c"):
        return [f32(x) for x in value]
    return f32(value) if slot == "f" else value


def store_value(field, spec: FieldSpec, data: Any) -> None:
    field.args.clear()
    if isinstance(data, str) and PARAM_REF.match(data):
        field.mode, field.param = "param", PARAM_REF.match(data).group(1)
        return
    if isinstance(data, dict):
        mode = next(k for k in data if k in DISTRIBUTIONS)
        values = list(data[mode])
        field.use_clip = "clip" in data
        if field.use_clip:
            values += list(data["clip"])
        field.use_weights = "weights" in data
    else:
        mode, values = "constant", [data]
    field["mode"] = schema.MODES.index(mode)  # no update callback: the arguments are set here
    for slot, value, k in zip(arg_slots(spec, mode, field.use_clip, len(values)), values, range(len(values))):
        arg = field.args.add()
        _set_slot(arg, slot, value)
        if field.use_weights:
            arg.weight = data["weights"][k]


def value_data(field, spec: FieldSpec) -> Any:
    if field.mode == "param":
        return "${" + field.param + "}"
    slots = arg_slots(spec, field.mode, field.use_clip, len(field.args))
    values = [_get_slot(arg, slot) for arg, slot in zip(field.args, slots)]
    if field.mode == "constant":
        return values[0] if values else None
    if field.mode == "normal" and field.use_clip:
        return {"normal": values[:2], "clip": values[2:4]}
    if field.mode == "choice" and field.use_weights:
        return {"choice": values, "weights": [f32(arg.weight) for arg in field.args]}
    return {field.mode: values}


PLACEHOLDERS = {"f": 0.0, "i": 0, "v": [0.0, 0.0, 0.0], "c": [0.8, 0.8, 0.8], "text": "", "flag": False,
                "names": [], "path": "", "point": [0.0, 0.0, 0.0]}


# widget -> (the field's property, how a recipe value is stored, how the stored value is read back)
SCALARS = {"bool": ("flag", bool, bool), "int": ("integer", int, int), "float": ("number", float, f32),
           "int2": ("int2", list, list), "float2": ("float2", list, lambda v: [f32(x) for x in v])}


def store_field(field, spec: FieldSpec, value: Any) -> None:
    field.key = spec.id
    field.is_set = value is not None
    if value is None:
        value = spec.default
    if value is None:  # a new component's required field, or an optional one left out: a starting value
        slot = schema.slot(spec.domain, "constant", 0) if spec.widget == "value" else spec.widget
        value = PLACEHOLDERS.get(slot)
        if spec.widget == "enum":
            value = spec.choices[0]
        if value is None:
            return
    widget = spec.widget
    if widget == "value":
        store_value(field, spec, value)
    elif widget in ("text", "enum", "path"):
        setattr(field, "path" if widget == "path" else "text", str(value))
    elif widget in SCALARS:
        slot, convert, _ = SCALARS[widget]
        setattr(field, slot, convert(value))
    elif widget == "point":
        field.use_name = isinstance(value, str)
        if field.use_name:
            field.text = value
        else:
            field.point = list(value)
    elif widget in ("names", "flags"):
        field.items.clear()
        for word in value:
            field.items.add().text = str(word)
    elif widget == "weights":
        field.items.clear()
        for stem, weight in value.items():
            item = field.items.add()
            item.text, item.weight = stem, weight
    else:
        raise ValueError(f"unknown widget {widget}")


def field_data(field, spec: FieldSpec) -> Any:
    if spec.optional and not field.is_set and spec.part != 1:  # the second of a pair follows the first
        return None
    widget = spec.widget
    if widget == "value":
        return value_data(field, spec)
    if widget in ("text", "enum"):
        return field.text if (field.text or not spec.optional) else None
    if widget == "path":
        return field.path or None if spec.optional else field.path
    if widget in SCALARS:
        slot, _, read = SCALARS[widget]
        return read(getattr(field, slot))
    if widget == "point":
        return field.text if field.use_name else [f32(x) for x in field.point]
    if widget in ("names", "flags"):
        return [item.text for item in field.items]
    if widget == "weights":
        return {item.text: f32(item.weight) for item in field.items}
    raise ValueError(f"unknown widget {widget}")


def _dotted_get(data: dict, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _dotted_set(data: dict, key: str, value: Any) -> None:
    *head, last = key.split(".")
    for part in head:
        data = data.setdefault(part, {})
    data[last] = value


def store_component(component, specs: list[FieldSpec], data: dict) -> None:
    component.fields.clear()
    for spec in specs:
        if spec.key == "name":
            continue
        value = _dotted_get(data, spec.key)
        if spec.part is not None and value is not None:
            value = value[spec.part]
        store_field(component.fields.add(), spec, value)


def component_data(component, specs: dict[str, FieldSpec]) -> dict:
    out: dict = {}
    for field in component.fields:
        spec = specs.get(field.key)
        if spec is None:
            continue
        value = field_data(field, spec)
        if spec.part is not None:
            if spec.part == 0 and value is not None:
                _dotted_set(out, spec.key, [value, None])
            elif spec.part == 1 and isinstance(_dotted_get(out, spec.key), list):
                _dotted_get(out, spec.key)[1] = value
            continue
        if value is not None or spec.default is not None:  # an explicit null, e.g. floor: null
            _dotted_set(out, spec.key, value)
    return out


def _store_parameter(record, name: str, param: Parameter) -> None:
    record.name, record.type, record.description = name, param.type, param.description
    record.use_min, record.use_max = param.min is not None, param.max is not None
    record.min, record.max = param.min or 0.0, param.max or 0.0
    record.choices.clear()
    for choice in param.choices or ():
        record.choices.add().text = schema.scalar_text(choice)
    if param.type == "int":
        record.default_i = int(param.default)
    elif param.type == "float":
        record.default_f = float(param.default)
    elif param.type == "bool":
        record.default_flag = bool(param.default)
    else:
        record.default_text = schema.scalar_text(param.default)


def _parameter_data(record) -> dict:
    data: dict = {"type": record.type}
    data["default"] = {"int": record.default_i, "float": f32(record.default_f), "bool": record.default_flag,
                       "choice": schema.scalar_value(record.default_text)}[record.type]
    if record.use_min:
        data["min"] = f32(record.min)
    if record.use_max:
        data["max"] = f32(record.max)
    if record.type == "choice":
        data["choices"] = [schema.scalar_value(item.text) for item in record.choices]
    if record.description:
        data["description"] = record.description
    return data


def store_recipe(settings, recipe: Recipe) -> None:
    """Replace the scene's recipe with ``recipe``."""
    data = recipe.to_data()
    settings.recipe.kind, settings.recipe.name = "recipe", recipe.name
    store_component(settings.recipe, schema.top_fields(), data)
    settings.parameters.clear()
    for name, param in recipe.parameters.items():
        _store_parameter(settings.parameters.add(), name, param)
    settings.constraints.clear()
    for rule in recipe.constraints:
        record = settings.constraints.add()
        record.left, record.op, record.right = rule.left, rule.op, schema.scalar_text(rule.right)
    for section in SECTIONS:
        records = getattr(settings, section)
        records.clear()
        for item in data.get(section, []):
            record = records.add()
            record.name, record.kind = item.get("name", ""), item["kind"]
            store_component(record, schema.fields_of(schema.component_model(section, item["kind"])), item)


def new_component(records, section: str, kind: str, name: str):
    """Append a component of ``kind`` with its model's defaults."""
    record = records.add()
    record.name, record.kind = name, kind
    store_component(record, schema.fields_of(schema.component_model(section, kind)), {})
    return record


def recipe_data(settings) -> dict:
    """The scene's recipe as recipe data (what a YAML file would hold), not yet validated."""
    data = component_data(settings.recipe, specs_of(settings.recipe)) if settings.recipe.kind else {}
    data = {"version": 1, "name": settings.recipe.name, **data}
    data["parameters"] = {p.name: _parameter_data(p) for p in settings.parameters}
    data["constraints"] = [{"left": r.left, "op": r.op, "right": schema.scalar_value(r.right)}
                           for r in settings.constraints]
    for section in SECTIONS:
        data[section] = [{"kind": r.kind, "name": r.name, **component_data(r, specs_of(r))}
                         for r in getattr(settings, section)]
    if not data["parameters"]:
        del data["parameters"]
    return data


def scene_base_dir(scene) -> Path:
    """Where the scene recipe's relative paths start (for a scene linked from another .blend: that file's)."""
    settings, library = scene.synthfarm, scene.library
    if settings.base_dir:
        return Path(bpy.path.abspath(settings.base_dir, library=library))
    if library is not None:
        return Path(bpy.path.abspath(library.filepath)).parent
    if bpy.data.filepath:
        return Path(bpy.data.filepath).parent
    return Path.cwd()


def scene_recipe(scene, *, check_files: bool = True) -> Recipe:
    """The scene's recipe, validated (RecipeError lists every problem with its path)."""
    base = scene_base_dir(scene)
    data = absolute_blender_paths(recipe_data(scene.synthfarm), base, scene.library)
    return recipe_from_data(data, base, f"scene {scene.name!r}", check_files=check_files)


def absolute_blender_paths(data: dict, base: Path, library=None) -> dict:
    """Blender's ``//`` paths (from its file browser) become paths relative to the recipe folder."""
    return map_paths(data, lambda p, field: os.path.relpath(bpy.path.abspath(p, library=library), base)
                     if p.startswith("//") else p)


def problems(scene) -> list[tuple[str, str]]:
    """Every problem of the scene's recipe as (path, message); empty when it is valid."""
    try:
        scene_recipe(scene)
    except RecipeError as err:
        return err.problems
    return []
