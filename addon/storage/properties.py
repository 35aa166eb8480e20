"""The recipe stored on a scene (``scene.synthfarm``, saved in the .blend): its PropertyGroups.

The storage is generic: a component is a record of its kind, its name and one :class:`SYNTHFARM_PG_field`
per field of its pydantic model (see :mod:`..core.schema`); a value field keeps its form (constant,
uniform, ..., ``${param}``) and its arguments in typed slots. :mod:`.convert` turns it into a Recipe and back.
Both the add-on's UI and the headless engine (a .blend as a job input) use this room; it never imports either.
"""
from __future__ import annotations

import math

import numpy as np
import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, FloatVectorProperty,
                       IntProperty, IntVectorProperty, PointerProperty, StringProperty)
from bpy.types import PropertyGroup

from ..core import schema
from ..core.schema import FieldSpec

MODE_ITEMS = [(key, name, text, icon, number) for number, (key, name, text, icon) in enumerate([
    ("constant", "Constant", "One value for every job", "DOT"),
    ("uniform", "Uniform", "Uniform between low and high", "IPO_LINEAR"),
    ("normal", "Normal", "Normal with mean and sigma, optionally clipped; draws stay inside the field's bounds",
     "SMOOTHCURVE"),
    ("triangular", "Triangular", "Triangular between left and right, peaking at mode", "SHARPCURVE"),
    ("randint", "Random integer", "A whole number between low and high, both included", "IPO_CONSTANT"),
    ("choice", "Choice", "One of a list of options, optionally weighted", "PRESET"),
    ("sweep_linspace", "Sweep (count)", "Job i takes the i-th of count evenly spaced values from start to stop",
     "LINENUMBERS_ON"),
    ("sweep_arange", "Sweep (step)", "Job i takes start + i*step, wrapping before stop", "SORTSIZE"),
    ("param", "Parameter", "The job's value of a recipe parameter: ${name}", "DRIVER"),
])]
assert [m[0] for m in MODE_ITEMS] == list(schema.MODES)
BLEND_RELATIVE = {"PATH_SUPPORTS_BLEND_RELATIVE"}  # path properties accept Blender's // (the .blend's folder)

# How Blender shows each unit of schema.UNITS (it also parses what is typed: "30cm", "45", "2 ft").
BLENDER_UNITS = {"m": "LENGTH", "mm": "CAMERA", "deg": "ROTATION", "K": "COLOR_TEMPERATURE", "W": "POWER",
                 "s": "TIME_ABSOLUTE"}
assert set(BLENDER_UNITS) == set(schema.UNITS)


def _unit_view(slot: str, unit: str, size: int = 0):
    """A property that shows the stored number(s) ``slot`` in ``unit``. The recipe's value stays in ``slot``
    as written (degrees, not Blender's radians: the view converts, rounded to 1e-4 degree)."""
    if unit == "deg":
        def to_ui(x):
            return math.radians(x)

        def from_ui(x):
            return round(math.degrees(x), 4)
    else:
        to_ui = from_ui = float
    precision = {"deg": 1, "K": 0, "W": 1}.get(unit, 3)
    if size:
        return FloatVectorProperty(name="Value", size=size, unit=BLENDER_UNITS[unit], precision=precision, step=10,
                                   get=lambda self: [to_ui(x) for x in getattr(self, slot)],
                                   set=lambda self, value: setattr(self, slot, [from_ui(x) for x in value]))
    return FloatProperty(name="Value", unit=BLENDER_UNITS[unit], precision=precision, step=10,
                         get=lambda self: to_ui(getattr(self, slot)),
                         set=lambda self, value: setattr(self, slot, from_ui(value)))


def _add_unit_views(cls, slots: dict[str, int]) -> None:
    """Give ``cls`` a view ``<slot>_<unit>`` of each number slot (size 0: a scalar) for every unit."""
    for slot, size in slots.items():
        for unit in BLENDER_UNITS:
            cls.__annotations__[f"{slot}_{unit}"] = _unit_view(slot, unit, size)


def view_of(record, slot: str, unit: str | None) -> str:
    """The property to draw for the stored number ``slot`` of a field in ``unit`` (the slot itself without one)."""
    return f"{slot}_{unit}" if unit and f"{slot}_{unit}" in record.bl_rna.properties else slot


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
        _ENUM_CACHE[key] = [(w, schema.display_name(w), "") for w in words] or [("", "(none)", "")]
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
    path: StringProperty(name="Path", subtype="FILE_PATH", options=BLEND_RELATIVE,
                         description="A file, a folder or a glob; relative paths start at the recipe folder")
    word: _word_enum(_arg_words)
    flag: BoolProperty(name="Value", description="True or false")
    weight: FloatProperty(name="Weight", default=1.0, min=0.0, description="Relative weight of this option")


_add_unit_views(SYNTHFARM_PG_arg, {"f": 0, "v": 3})


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
    show_expanded: BoolProperty(name="Show All", description="Show every item of this list (off: a summary)")


_add_unit_views(SYNTHFARM_PG_field, {"number": 0, "float2": 2, "point": 3})


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
    min_i: IntProperty(name="Min", description="Lowest value a job may set", get=lambda self: round(self.min),
                       set=lambda self, value: setattr(self, "min", value))
    max_i: IntProperty(name="Max", description="Highest value a job may set", get=lambda self: round(self.max),
                       set=lambda self, value: setattr(self, "max", value))


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
    last_out: StringProperty(name="Dataset", subtype="DIR_PATH", description="The folder Render Locally wrote last")


def arg_slots(spec: FieldSpec, mode: str, use_clip: bool, count: int) -> list[str]:
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
    want = max(len(field.args), 1) if field.mode == "choice" else len(arg_slots(spec, field.mode, True, 0))
    first = field.args[0] if len(field.args) else None
    while len(field.args) < want:
        new = field.args.add()
        if first is not None:
            copy_group(first, new)
    if field.mode != "choice":
        while len(field.args) > want:
            field.args.remove(len(field.args) - 1)


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
