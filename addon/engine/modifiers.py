"""Modifiers: how generated objects look. Each draws per object from its own stream."""
from __future__ import annotations

import colorsys
from pathlib import Path

import bpy

from ..core.recipe import Recipe, resolve_path
from ..core.sampling import Sampler
from .materials import base_color, own_materials, set_base_color


class ModifierError(Exception):
    pass


def _color_variation(mod, objects, stream, ctx):
    for obj in objects:
        for i, material in enumerate(own_materials(obj)):
            h, s, v = colorsys.rgb_to_hsv(*base_color(material))
            item = f"{obj.name}/{i}"
            if mod.hue is not None:
                h = stream.draw("hue", mod.hue, item)
            if mod.saturation is not None:
                s = stream.draw("saturation", mod.saturation, item)
            if mod.value is not None:
                v = stream.draw("value", mod.value, item)
            set_base_color(material, colorsys.hsv_to_rgb(h, s, v))


def _material_swap(mod, objects, stream, ctx):
    library = {}
    if mod.library:
        library = ctx["cache"].load_material_library(resolve_path(mod.library, ctx["base_dir"]))
    for obj in objects:
        name = stream.draw("material", mod.material, obj.name)
        material = library.get(name) or bpy.data.materials.get(name)
        if material is None:
            where = f"library {mod.library!r}" if mod.library else "this scene (add library: file.blend)"
            raise ModifierError(f"modifiers.{mod.name}: no material {name!r} in {where}")
        if not obj.material_slots:
            raise ModifierError(f"modifiers.{mod.name}: object {obj.name!r} has no material slot to swap")
        for slot in obj.material_slots:
            slot.link = "OBJECT"
            slot.material = material


def _scale_jitter(mod, objects, stream, ctx):
    for obj in objects:
        factor = stream.draw("factor", mod.factor, obj.name)
        obj.scale = [s * factor for s in obj.scale]


def _random_hide(mod, objects, stream, ctx):
    for obj in objects:
        hidden = bool(stream.rng.random() < stream.draw("probability", mod.probability, obj.name))
        stream.record("hidden", hidden, obj.name)
        obj.hide_render = obj.hide_render or hidden


APPLY = {"color_variation": _color_variation, "material_swap": _material_swap,
         "scale_jitter": _scale_jitter, "random_hide": _random_hide}


def apply_modifiers(recipe: Recipe, made: dict[str, list], sampler: Sampler, *, cache, base_dir: Path | None):
    ctx = {"cache": cache, "base_dir": base_dir}
    for mod in recipe.modifiers:
        stream = sampler.stream(f"modifiers/{mod.name}")
        objects = [obj for target in mod.targets for obj in made.get(target, [])]
        APPLY[mod.kind](mod, objects, stream, ctx)
