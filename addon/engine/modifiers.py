"""Modifiers: how generated objects look. Each draws per object from its own stream."""
from __future__ import annotations

import colorsys
from pathlib import Path

import bpy

from ..core.components import FILE_DOMAINS
from ..core.recipe import Recipe
from ..core.sampling import Sampler
from ..core.textures import TextureSetError, read_texture_set
from ..core.values import resolve_member
from .materials import (base_color, colour_stage, own_materials, principled, scale_input, scale_normal_strength,
                        set_base_color, texture_material)
from .procedural import assign_material


class ModifierError(Exception):
    pass


ABSOLUTE = ("hue", "saturation", "value")
STAGE = {"hue_shift": ("Hue", lambda x: 0.5 + x), "saturation_scale": ("Saturation", float),
         "value_scale": ("Value", float)}


def _color_variation(mod, objects, stream, ctx):
    for obj in objects:
        for i, material in enumerate(own_materials(obj)):
            item = f"{obj.name}/{i}"
            absolute = [f for f in ABSOLUTE if getattr(mod, f) is not None]
            node = principled(material)
            if absolute and node is not None and node.inputs["Base Color"].is_linked:
                raise ModifierError(
                    f"modifiers.{mod.name}.{absolute[0]}: {obj.name!r} takes its base colour from a texture, "
                    "which a plain hue/saturation/value cannot set; use hue_shift, saturation_scale, value_scale")
            if absolute:
                h, s, v = colorsys.rgb_to_hsv(*base_color(material))
                h, s, v = (stream.draw(f, getattr(mod, f), item) if getattr(mod, f) is not None else old
                           for f, old in zip(ABSOLUTE, (h, s, v)))
                set_base_color(material, colorsys.hsv_to_rgb(h, s, v))
            shifts = [f for f in STAGE if getattr(mod, f) is not None]
            if shifts:
                stage = colour_stage(material)
                for f in shifts:
                    socket, convert = STAGE[f]
                    stage.inputs[socket].default_value = convert(stream.draw(f, getattr(mod, f), item))
            for field, name in (("roughness_scale", "Roughness"), ("metallic_scale", "Metallic")):
                if getattr(mod, field) is not None:
                    scale_input(material, name, stream.draw(field, getattr(mod, field), item))
            if mod.normal_scale is not None:
                scale_normal_strength(material, stream.draw("normal_scale", mod.normal_scale, item))


def _procedural_material(mod, objects, stream, ctx):
    for obj in objects:
        optional = {f: stream.draw(f, getattr(mod, f), obj.name) for f in ("color", "roughness", "metallic")
                    if getattr(mod, f) is not None}
        assign_material(obj, stream, obj.name, family=stream.draw("family", mod.family, obj.name),
                        scale=stream.draw("scale", mod.scale, obj.name), bump=stream.draw("bump", mod.bump, obj.name),
                        per=mod.per, templates=ctx["cache"].materials, **optional)


def _texture_set(mod, objects, stream, ctx):
    for obj in objects:
        slots = max(1, len(obj.material_slots)) if mod.per == "slot" else 1
        if not obj.material_slots:
            obj.data.materials.append(None)
        materials = []
        for k in range(slots):
            item = obj.name if mod.per == "object" else f"{obj.name}/{k}"
            member = stream.draw_file("textures", mod.textures, FILE_DOMAINS["textures"], ctx["base_dir"], item)
            try:
                maps = read_texture_set(resolve_member(member, ctx["base_dir"]))
            except TextureSetError as err:
                raise ModifierError(f"modifiers.{mod.name}.textures: {err}") from None
            materials.append(texture_material(f"{obj.name}_{Path(member).name}", maps, object_scale=tuple(obj.scale),
                                              scale=stream.draw("scale", mod.scale, item),
                                              rotation_deg=stream.draw("rotation", mod.rotation, item),
                                              templates=ctx["cache"].materials))
        for k, slot in enumerate(obj.material_slots):
            slot.link = "OBJECT"
            slot.material = materials[k if mod.per == "slot" else 0]


def _material_swap(mod, objects, stream, ctx):
    library = {}
    if mod.library is not None:
        member = stream.draw_file("library", mod.library, FILE_DOMAINS["library"], ctx["base_dir"])
        library = ctx["cache"].load_material_library(resolve_member(member, ctx["base_dir"]))
    for obj in objects:
        name = stream.draw("material", mod.material, obj.name)
        material = library.get(name) or bpy.data.materials.get(name)
        if material is None:
            where = f"library {member!r}" if mod.library is not None else "this scene (add library: file.blend)"
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


APPLY = {"color_variation": _color_variation, "procedural_material": _procedural_material,
         "texture_set": _texture_set, "material_swap": _material_swap,
         "scale_jitter": _scale_jitter, "random_hide": _random_hide}


def apply_modifiers(recipe: Recipe, made: dict[str, list], sampler: Sampler, *, cache, base_dir: Path | None):
    ctx = {"cache": cache, "base_dir": base_dir}
    for mod in recipe.modifiers:
        stream = sampler.stream(f"modifiers/{mod.name}")
        objects = [obj for target in mod.targets for obj in made.get(target, [])]
        APPLY[mod.kind](mod, objects, stream, ctx)
