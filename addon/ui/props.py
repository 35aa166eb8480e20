"""The recipe stored on the scene (``scene.synthfarm``), saved in the .blend, and its exact conversion
to and from the Recipe model.

The storage is generic: a component is a record of its kind, its name and one :class:`SYNTHFARM_PG_field`
per field of its pydantic model (see :mod:`..core.schema`); a value field keeps its form (constant,
uniform, ..., ``${param}``) and its arguments in typed slots. Blender stores floats in single
precision, so numbers come back as the shortest decimal that single precision holds (0.42 stays 0.42;
a number with more than 7 significant digits is rounded to 7).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import bpy
import numpy as np
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, FloatVectorProperty,
                       IntProperty, IntVectorProperty, PointerProperty, StringProperty)
from bpy.types import PropertyGroup

from ..core import schema
from ..core.recipe import Parameter, Recipe, RecipeError, map_paths, recipe_from_data
from ..core.schema import SECTIONS, FieldSpec
from ..core.values import DISTRIBUTIONS, PARAM_REF

MODE_ITEMS = [
    ("constant", "Constant", "One value for every job"),
    ("uniform", "Uniform", "Uniform between low and high"),
    ("normal", "Normal", "Normal with mean and sigma, optionally clipped; draws stay inside the field's bounds"),
    ("triangular", "Triangular", "Triangular between left and right, peaking at mode"),
    ("randint", "Random integer", "A whole number between low and high, both included"),
    ("choice", "Choice", "One of a list of options, optionally weighted"),
    ("sweep_linspace", "Sweep (count)", "Job i takes the i-th of count evenly spaced values from start to stop"),
    ("sweep_arange", "Sweep (step)", "Job i takes start + i*step, wrapping before stop"),
    ("param", "Parameter", "The job's value of a recipe parameter: ${name}"),
]
assert [m[0] for m in MODE_ITEMS] == list(schema.MODES)
BLEND_RELATIVE = {"PATH_SUPPORTS_BLEND_RELATIVE"}  # path properties accept Blender's // (the .blend's folder)


def f32(value: float) -> float:
    """The shortest decimal of a single-precision float (what Blender stored)."""
    return float(str(np.float32(value)))


# -- where a stored record sits: its spec, found from its RNA path ----------------------------------------
def _resolve(struct, path: str):
    return struct.id_data.path_resolve(path)


def field_spec(field) -> FieldSpec:
    component = _resolve(field, field.path_from_id().rsplit(".fields[", 1)[0])
    return specs_of(component)[field.key]


def specs_of(component) -> dict[str, FieldSpec]:
    if component.kind == "recipe":
        fields = schema.top_fields()
    else:
        section = component.path_from_id().split(".")[-1].split("[")[0]
        fields = schema.fields_of(schema.component_model(section, component.kind))
    return {f.id: f for f in fields if f.key != "name"}


def arg_field(arg):
    return _resolve(arg, arg.path_from_id().rsplit(".", 1)[0])


_ENUM_CACHE: dict[tuple, list] = {}  # Blender needs the strings of dynamic enum items kept alive


def _enum_items(words) -> list:
    key = tuple(words)
    if key not in _ENUM_CACHE:
        _ENUM_CACHE[key] = [(w, w.replace("_", " ").title() if w.islower() else w, "") for w in words] or [
            ("", "(none)", "")]
    return _ENUM_CACHE[key]


def _word_enum(words_of):
    """An EnumProperty drawn as a menu but stored in ``text`` (so the stored value is the word itself)."""
    def items(self, context):
        return _enum_items(words_of(self))

    def get(self):
        words = words_of(self)
        return words.index(self.text) if self.text in words else 0

    def set(self, index):
        words = words_of(self)
        if 0 <= index < len(words):
            self.text = words[index]

    return EnumProperty(name="Value", items=items, get=get, set=set, description="Choose one")


def _arg_words(arg):
    spec = field_spec(arg_field(arg))
    return list(spec.domain.choices or ()) if spec.domain else []


def _field_words(field):
    return list(field_spec(field).choices)


def _flags_get(self):
    chosen = {item.text for item in self.items}
    return sum(1 << i for i, word in enumerate(_field_words(self)) if word in chosen)


def _flags_set(self, mask):
    words = _field_words(self)
    self.items.clear()
    for i, word in enumerate(words):
        if mask & (1 << i):
            self.items.add().text = word


def _flags_items(self, context):
    return _enum_items(_field_words(self))


class SYNTHFARM_PG_arg(PropertyGroup):
    """One argument of a value (a bound, a mean, a choice option) or one item of a list field."""

    f: FloatProperty(name="Value", description="A number", precision=3, step=10)
    i: IntProperty(name="Value", description="A whole number")
    v: FloatVectorProperty(name="Value", size=3, description="X, Y, Z", precision=3, step=10)
    c: FloatVectorProperty(name="Colour", size=3, subtype="COLOR", min=0.0, soft_max=1.0,
                           description="Red, green, blue in [0, 1] (linear)")
    text: StringProperty(name="Value", description="A word or a name")
    word: _word_enum(_arg_words)
    flag: BoolProperty(name="Value", description="True or false")
    weight: FloatProperty(name="Weight", default=1.0, min=0.0, description="Relative weight of this option")


def _mode_changed(self, context):
    resize_args(self)


class SYNTHFARM_PG_field(PropertyGroup):
    """One field of a component; which properties are used depends on the field's widget."""

    key: StringProperty(name="Field", description="The recipe key of this field")
    is_set: BoolProperty(name="Set", default=True, description="Give this optional field a value (off: left out)")
    mode: EnumProperty(name="Form", items=MODE_ITEMS, update=_mode_changed,
                       description="A constant, a distribution drawn per job, or a recipe parameter")
    args: CollectionProperty(type=SYNTHFARM_PG_arg)
    use_clip: BoolProperty(name="Clip", description="Clip normal draws to [low, high]")
    use_weights: BoolProperty(name="Weights", description="Weight the options (otherwise equally likely)")
    param: StringProperty(name="Parameter", description="The recipe parameter this field takes its value from")
    text: StringProperty(name="Value", description="A word or a name")
    word: _word_enum(_field_words)
    path: StringProperty(name="Path", subtype="FILE_PATH", options=BLEND_RELATIVE,
                         description="A file or folder; relative paths start at the recipe folder")
    flag: BoolProperty(name="Value")
    number: FloatProperty(name="Value", precision=3, step=10)
    integer: IntProperty(name="Value")
    int2: IntVectorProperty(name="Value", size=2)
    float2: FloatVectorProperty(name="Value", size=2, precision=3)
    use_name: BoolProperty(name="Aim at a generator", default=True,
                           description="Aim at a generator's objects (off: at a fixed point)")
    point: FloatVectorProperty(name="Point", size=3, subtype="XYZ", precision=3)
    items: CollectionProperty(type=SYNTHFARM_PG_arg)
    flags: EnumProperty(name="Value", items=_flags_items, options={"ENUM_FLAG"}, get=_flags_get, set=_flags_set)


class SYNTHFARM_PG_component(PropertyGroup):
    """A generator, modifier, randomizer or sensor (its ``name`` is the record's name)."""

    kind: StringProperty(name="Kind", description="What this component does")
    fields: CollectionProperty(type=SYNTHFARM_PG_field)
    show_expanded: BoolProperty(name="Show", default=True)


PARAM_TYPES = [("int", "Integer", "A whole number"), ("float", "Number", "A number"),
               ("choice", "Choice", "One of a list of values"), ("bool", "Boolean", "True or false")]
OPS = [(op, op, f"left {op} right") for op in ("<", "<=", ">", ">=", "==", "!=")]


class SYNTHFARM_PG_parameter(PropertyGroup):
    """A recipe parameter (its ``name`` is the record's name): a knob each job may set."""

    type: EnumProperty(name="Type", items=PARAM_TYPES, description="What values the parameter takes")
    default_f: FloatProperty(name="Default", precision=3, description="Value when a job does not set it")
    default_i: IntProperty(name="Default", description="Value when a job does not set it")
    default_flag: BoolProperty(name="Default", description="Value when a job does not set it")
    default_text: StringProperty(name="Default", description="Value when a job does not set it (one of the choices)")
    use_min: BoolProperty(name="Min", description="Give a lower bound")
    min: FloatProperty(name="Min", precision=3, description="Lowest value a job may set")
    use_max: BoolProperty(name="Max", description="Give an upper bound")
    max: FloatProperty(name="Max", precision=3, description="Highest value a job may set")
    choices: CollectionProperty(type=SYNTHFARM_PG_arg)
    description: StringProperty(name="Description", description="What this parameter changes")


class SYNTHFARM_PG_constraint(PropertyGroup):
    """A rule between parameters each job keeps: left op right (right: a parameter or a number)."""

    left: StringProperty(name="Left", description="A parameter name")
    op: EnumProperty(name="Operator", items=OPS, description="How left compares to right")
    right: StringProperty(name="Right", description="A parameter name or a number")


class SYNTHFARM_PG_settings(PropertyGroup):
    """Everything synthfarm keeps on a scene: the recipe and the panel's working state."""

    recipe: PointerProperty(type=SYNTHFARM_PG_component)  # name, description, scene.base, output.*, frames
    parameters: CollectionProperty(type=SYNTHFARM_PG_parameter)
    constraints: CollectionProperty(type=SYNTHFARM_PG_constraint)
    generators: CollectionProperty(type=SYNTHFARM_PG_component)
    modifiers: CollectionProperty(type=SYNTHFARM_PG_component)
    randomizers: CollectionProperty(type=SYNTHFARM_PG_component)
    sensors: CollectionProperty(type=SYNTHFARM_PG_component)
    active_generator: IntProperty(name="Active generator")
    active_modifier: IntProperty(name="Active modifier")
    active_randomizer: IntProperty(name="Active randomizer")
    active_sensor: IntProperty(name="Active sensor")
    active_parameter: IntProperty(name="Active parameter")
    base_dir: StringProperty(name="Recipe folder", subtype="DIR_PATH", options=BLEND_RELATIVE,
                             description="Where relative paths of the recipe start; empty: the .blend's folder")
    label_class: StringProperty(name="Class", description="Class label to give the selected objects")
    seed: IntProperty(name="Seed", min=0, description="Job seed of Randomize and Preview (same seed, same scene)")
    jobs: IntProperty(name="Jobs", default=4, min=1, description="How many jobs Render Locally renders")
    out: StringProperty(name="Output", subtype="DIR_PATH", options=BLEND_RELATIVE,
                        default="//synthfarm_out",
                        description="Dataset folder of Render Locally (an existing dataset of this recipe resumes)")
    preview_quality: BoolProperty(name="Preview quality", default=False,
                                  description="Render Locally at the recipe's preview tier (fewer samples, smaller)")
    progress: FloatProperty(name="Progress", min=0, max=1, subtype="FACTOR")
    status: StringProperty(name="Status")


# -- recipe -> props --------------------------------------------------------------------------------------
def _set_slot(arg, slot: str, value: Any) -> None:
    if slot in ("v", "c"):
        value = list(value) if isinstance(value, (list, tuple)) else [value] * 3
    setattr(arg, slot, value)


def _get_slot(arg, slot: str) -> Any:
    value = getattr(arg, slot)
    if slot in ("v", "c"):
        return [f32(x) for x in value]
    return f32(value) if slot == "f" else value


def _args_for(spec: FieldSpec, mode: str, use_clip: bool, count: int) -> list[str]:
    """The slot of every stored argument of a value in ``mode``."""
    if mode == "choice":
        return [schema.slot(spec.domain, mode, 0)] * count
    n = len(schema.ARG_NAMES[mode]) + (2 if mode == "normal" and use_clip else 0)
    return [schema.slot(spec.domain, mode, 0 if k >= 2 else k) for k in range(n)]  # clip bounds: as the mean


def resize_args(field) -> None:
    """Give a value field as many arguments as its form needs, keeping what is there."""
    spec = field_spec(field)
    if spec.widget != "value":
        return
    want = max(len(field.args), 1) if field.mode == "choice" else len(_args_for(spec, field.mode, True, 0))
    first = field.args[0] if len(field.args) else None
    while len(field.args) < want:
        new = field.args.add()
        if first is not None:
            copy_group(first, new)
    if field.mode != "choice":
        while len(field.args) > want:
            field.args.remove(len(field.args) - 1)


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
    for slot, value, k in zip(_args_for(spec, mode, field.use_clip, len(values)), values, range(len(values))):
        arg = field.args.add()
        _set_slot(arg, slot, value)
        if field.use_weights:
            arg.weight = data["weights"][k]


def value_data(field, spec: FieldSpec) -> Any:
    if field.mode == "param":
        return "${" + field.param + "}"
    slots = _args_for(spec, field.mode, field.use_clip, len(field.args))
    values = [_get_slot(arg, slot) for arg, slot in zip(field.args, slots)]
    if field.mode == "constant":
        return values[0] if values else None
    if field.mode == "normal" and field.use_clip:
        return {"normal": values[:2], "clip": values[2:4]}
    if field.mode == "choice" and field.use_weights:
        return {"choice": values, "weights": [f32(arg.weight) for arg in field.args]}
    return {field.mode: values}


PLACEHOLDERS = {"f": 0.0, "i": 0, "v": [0.0, 0.0, 0.0], "c": [0.8, 0.8, 0.8], "text": "", "flag": False,
                "names": [], "text": "", "path": "", "point": [0.0, 0.0, 0.0]}


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
    elif widget in ("text", "enum"):
        field.text = str(value)
    elif widget == "path":
        field.path = str(value)
    elif widget == "bool":
        field.flag = bool(value)
    elif widget == "int":
        field.integer = int(value)
    elif widget == "float":
        field.number = float(value)
    elif widget == "int2":
        field.int2 = list(value)
    elif widget == "float2":
        field.float2 = list(value)
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
    if widget == "bool":
        return field.flag
    if widget == "int":
        return field.integer
    if widget == "float":
        return f32(field.number)
    if widget == "int2":
        return list(field.int2)
    if widget == "float2":
        return [f32(x) for x in field.float2]
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
    """Where the scene recipe's relative paths start."""
    settings = scene.synthfarm
    if settings.base_dir:
        return Path(bpy.path.abspath(settings.base_dir))
    if bpy.data.filepath:
        return Path(bpy.data.filepath).parent
    return Path.cwd()


def scene_recipe(scene, *, check_files: bool = True) -> Recipe:
    """The scene's recipe, validated (RecipeError lists every problem with its path)."""
    base = scene_base_dir(scene)
    data = absolute_blender_paths(recipe_data(scene.synthfarm), base)
    return recipe_from_data(data, base, f"scene {scene.name!r}", check_files=check_files)


def absolute_blender_paths(data: dict, base: Path) -> dict:
    """Blender's ``//`` paths (from its file browser) become paths relative to the recipe folder."""
    return map_paths(data, lambda p: os.path.relpath(bpy.path.abspath(p), base) if p.startswith("//") else p)


def problems(scene) -> list[tuple[str, str]]:
    """Every problem of the scene's recipe as (path, message); empty when it is valid."""
    try:
        scene_recipe(scene)
    except RecipeError as err:
        return err.problems
    return []


def copy_group(source, target) -> None:
    """Copy every property of one PropertyGroup record to another of the same type (deep)."""
    for prop in source.bl_rna.properties:
        key = prop.identifier
        if key == "rna_type" or prop.is_readonly and prop.type != "COLLECTION":
            continue
        if prop.type == "COLLECTION":
            items = getattr(target, key)
            items.clear()
            for item in getattr(source, key):
                copy_group(item, items.add())
        elif prop.type == "POINTER":
            copy_group(getattr(source, key), getattr(target, key))
        elif key in source:  # only what is stored (dynamic enums are views of stored text)
            target[key] = source[key]


classes = (SYNTHFARM_PG_arg, SYNTHFARM_PG_field, SYNTHFARM_PG_component, SYNTHFARM_PG_parameter,
           SYNTHFARM_PG_constraint, SYNTHFARM_PG_settings)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register():
    _register()
    bpy.types.Scene.synthfarm = PointerProperty(type=SYNTHFARM_PG_settings, name="Synthfarm",
                                                description="The synthfarm recipe of this scene")


def unregister():
    del bpy.types.Scene.synthfarm
    _unregister()


def ensure_registered() -> None:
    """Register the scene storage in a process without the add-on (a worker reading a .blend)."""
    if not hasattr(bpy.types.Scene, "synthfarm"):
        register()
