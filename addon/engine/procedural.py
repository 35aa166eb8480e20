"""Procedural PBR material families built from Blender's own shader nodes.

Every family maps its patterns by object coordinates scaled by the object's scale, so no UVs are needed
and pattern sizes are in metres whatever the mesh's units. A family draws what the recipe leaves open
(colour, roughness, metallic) from the modifier's stream and records everything it drew.
"""
from __future__ import annotations

import colorsys
import math

import bpy

from .shader_graph import Graph, MaterialTemplates

def _hsv(h, s, v):
    return tuple(colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0), 1), min(max(v, 0), 1)))


def _shade(color, factor):
    return tuple(min(1.0, c * factor) for c in color)


# Each family: a palette (how a colour is drawn when the recipe gives none), roughness and metallic ranges, and a
# builder that wires the pattern into the BSDF. Builders get (graph, coords-maker, colour, roughness, metallic, bump, rng).
def _palette_saturated(rng):
    return _hsv(rng.uniform(), rng.uniform(0.5, 0.95), rng.uniform(0.35, 0.9))


def _palette_grey(lo, hi):
    def draw(rng):
        v = rng.uniform(lo, hi)
        tint = rng.uniform(-0.03, 0.03)
        return (v + tint, v, v - tint)
    return draw


def _palette_metal(rng):
    kind = rng.choice(4, p=[0.6, 0.15, 0.15, 0.1])
    return [(0.62, 0.62, 0.64), (0.95, 0.64, 0.54), (1.0, 0.77, 0.34), (0.56, 0.57, 0.58)][kind]


def _palette_wood(rng):
    return _hsv(rng.uniform(0.05, 0.1), rng.uniform(0.45, 0.75), rng.uniform(0.25, 0.65))


def _palette_soft(rng):
    return _hsv(rng.uniform(), rng.uniform(0.0, 0.5), rng.uniform(0.55, 0.95))


def _plastic(g, coords, color, rough, metal, bump, rng):
    noise = g.node("ShaderNodeTexNoise", {"Vector": coords(0.02), "Detail": 4.0})
    g.out(Base_Color=color, Roughness=rough, Metallic=metal)
    g.bump(noise.outputs["Fac"], 0.15 * bump)


def _rubber(g, coords, color, rough, metal, bump, rng):
    noise = g.node("ShaderNodeTexNoise", {"Vector": coords(0.004), "Detail": 2.0})
    g.out(Base_Color=color, Roughness=rough, Metallic=metal)
    g.bump(noise.outputs["Fac"], 0.4 * bump, 0.001)


def _ceramic(g, coords, color, rough, metal, bump, rng):
    noise = g.node("ShaderNodeTexNoise", {"Vector": coords(0.05), "Detail": 1.0})
    g.out(Base_Color=color, Roughness=rough, Metallic=metal, Coat_Weight=rng.uniform(0.5, 1.0), Coat_Roughness=0.03)
    g.bump(noise.outputs["Fac"], 0.05 * bump)


def _painted_metal(g, coords, color, rough, metal, bump, rng):
    noise = g.node("ShaderNodeTexNoise", {"Vector": coords(0.03), "Detail": 8.0, "Roughness": 0.65})
    wear = rng.uniform(0.62, 0.72)  # higher: fewer chips
    chips = g.node("ShaderNodeMapRange", {"Value": noise.outputs["Fac"], "From Min": wear, "From Max": wear + 0.02})
    mask = chips.outputs["Result"]  # 1 where the paint is chipped off
    g.out(Base_Color=g.mix(mask, color, (0.6, 0.6, 0.62)), Metallic=g.mix(mask, metal, 1.0, "FLOAT"),
          Roughness=g.mix(mask, rough, 0.3, "FLOAT"))
    g.bump(mask, 0.5 * bump, 0.0005)


def _brushed_metal(g, coords, color, rough, metal, bump, rng):
    lines = g.node("ShaderNodeTexNoise", {"Vector": coords(0.05, (1.0, 1.0, 60.0)), "Detail": 6.0})
    g.mapping.inputs["Rotation"].default_value = (rng.uniform(0, math.pi), rng.uniform(0, math.pi), 0.0)
    spread = g.node("ShaderNodeMapRange", {"Value": lines.outputs["Fac"], "To Min": rough * 0.7, "To Max": rough * 1.3})
    g.out(Base_Color=color, Metallic=metal, Roughness=spread.outputs["Result"], Anisotropic=rng.uniform(0.5, 0.9))
    g.bump(lines.outputs["Fac"], 0.2 * bump, 0.0005)


def _bare_metal(g, coords, color, rough, metal, bump, rng):
    noise = g.node("ShaderNodeTexNoise", {"Vector": coords(0.08), "Detail": 6.0})
    spread = g.node("ShaderNodeMapRange", {"Value": noise.outputs["Fac"], "To Min": max(0.0, rough - 0.12),
                                           "To Max": min(1.0, rough + 0.12)})
    g.out(Base_Color=color, Metallic=metal, Roughness=spread.outputs["Result"])
    g.bump(noise.outputs["Fac"], 0.1 * bump)


def _wood(g, coords, color, rough, metal, bump, rng):
    """Flat-sawn boards: growth rings about an axis in the surface's plane, seen far from the pith, so
    the grain runs in long stripes (rings about the vertical axis looked like a target from above)."""
    vector = coords(0.25, (0.1, 1.0, 1.0))
    g.mapping.inputs["Location"].default_value = (0.0, rng.uniform(-4, 4), rng.uniform(4, 10))  # ring periods
    g.mapping.inputs["Rotation"].default_value = (0.0, 0.0, rng.uniform(0, 2 * math.pi))
    wave = g.node("ShaderNodeTexWave", {"Vector": vector, "Distortion": rng.uniform(4, 8), "Detail": 4.0,
                                        "Detail Scale": 2.5}, wave_type="RINGS", rings_direction="X")
    grain = g.ramp(wave.outputs["Fac"], [_shade(color, 0.55), color, _shade(color, 1.25)], [0.0, 0.55, 1.0])
    g.out(Base_Color=grain, Roughness=rough, Metallic=metal)
    g.bump(wave.outputs["Fac"], 0.05 * bump)  # grain is seen more than felt


def _stone(g, coords, color, rough, metal, bump, rng):
    cells = g.node("ShaderNodeTexVoronoi", {"Vector": coords(0.05), "Randomness": 1.0})
    noise = g.node("ShaderNodeTexNoise", {"Vector": coords(0.02), "Detail": 10.0})
    height = g.mix(0.5, cells.outputs["Distance"], noise.outputs["Fac"], "FLOAT")
    g.out(Base_Color=g.ramp(height, [_shade(color, 0.6), color, _shade(color, 1.3)]), Roughness=rough, Metallic=metal)
    g.bump(height, 0.6 * bump)


def _concrete(g, coords, color, rough, metal, bump, rng):
    noise = g.node("ShaderNodeTexNoise", {"Vector": coords(0.1), "Detail": 12.0, "Roughness": 0.6})
    pores = g.node("ShaderNodeTexVoronoi", {"Vector": coords(0.003)})
    pits = g.node("ShaderNodeMapRange", {"Value": pores.outputs["Distance"], "From Min": 0.0, "From Max": 0.15})
    g.out(Base_Color=g.ramp(noise.outputs["Fac"], [_shade(color, 0.8), _shade(color, 1.15)]), Roughness=rough,
          Metallic=metal)
    g.bump(pits.outputs["Result"], 0.5 * bump, 0.0005)


def _fabric(g, coords, color, rough, metal, bump, rng):
    vector = coords(0.002)
    warp = g.node("ShaderNodeTexWave", {"Vector": vector, "Scale": 1.0}, wave_type="BANDS", bands_direction="X")
    weft = g.node("ShaderNodeTexWave", {"Vector": vector, "Scale": 1.0}, wave_type="BANDS", bands_direction="Y")
    weave = g.node("ShaderNodeMath", {0: warp.outputs["Fac"], 1: weft.outputs["Fac"]}, operation="MULTIPLY")
    g.out(Base_Color=g.ramp(weave.outputs[0], [_shade(color, 0.75), color]), Roughness=rough, Metallic=metal,
          Sheen_Weight=rng.uniform(0.3, 0.8))
    g.bump(weave.outputs[0], 0.4 * bump, 0.0005)


RANDOM_PATTERNS = ("noise", "voronoi", "stripes", "checker", "gradient")


def _random(g, coords, color, rough, metal, bump, rng):
    """Domain randomization: a random pattern in random colours."""
    pattern = RANDOM_PATTERNS[int(rng.integers(len(RANDOM_PATTERNS)))]
    vector = coords(rng.uniform(0.01, 0.1))
    if pattern == "noise":
        fac = g.node("ShaderNodeTexNoise", {"Vector": vector, "Detail": rng.uniform(0, 8)}).outputs["Fac"]
    elif pattern == "voronoi":
        fac = g.node("ShaderNodeTexVoronoi", {"Vector": vector}).outputs["Distance"]
    elif pattern == "stripes":
        fac = g.node("ShaderNodeTexWave", {"Vector": vector, "Scale": 1.0},
                     bands_direction=("X", "Y", "Z", "DIAGONAL")[int(rng.integers(4))]).outputs["Fac"]
    elif pattern == "checker":
        fac = g.node("ShaderNodeTexChecker", {"Vector": vector, "Scale": 1.0}).outputs["Fac"]
    else:
        kinds = ("LINEAR", "QUADRATIC", "DIAGONAL", "SPHERICAL", "RADIAL")
        fac = g.node("ShaderNodeTexGradient", {"Vector": vector},
                     gradient_type=kinds[int(rng.integers(len(kinds)))]).outputs["Fac"]
    colours = [color] + [_palette_saturated(rng) for _ in range(int(rng.integers(1, 3)))]
    hard = pattern in ("stripes", "checker") or rng.uniform() < 0.3
    g.out(Base_Color=g.ramp(fac, colours, interpolation="CONSTANT" if hard else "LINEAR"), Roughness=rough,
          Metallic=metal)
    g.bump(fac, 0.3 * bump)
    return pattern


# family: (palette, roughness range, metallic, builder)
FAMILIES = {
    "plastic": (_palette_saturated, (0.2, 0.5), 0.0, _plastic),
    "painted_metal": (_palette_saturated, (0.3, 0.6), 0.0, _painted_metal),
    "brushed_metal": (_palette_metal, (0.2, 0.4), 1.0, _brushed_metal),
    "bare_metal": (_palette_metal, (0.15, 0.5), 1.0, _bare_metal),
    "wood": (_palette_wood, (0.45, 0.75), 0.0, _wood),
    "stone": (_palette_grey(0.25, 0.6), (0.7, 0.95), 0.0, _stone),
    "concrete": (_palette_grey(0.35, 0.65), (0.8, 0.98), 0.0, _concrete),
    "fabric": (_palette_soft, (0.8, 1.0), 0.0, _fabric),
    "rubber": (_palette_grey(0.02, 0.15), (0.75, 0.95), 0.0, _rubber),
    "ceramic": (_palette_soft, (0.03, 0.15), 0.0, _ceramic),
    "random": (_palette_saturated, (0.0, 1.0), 0.0, _random),
}


def build_material(name: str, family: str, rng, *, object_scale=(1.0, 1.0, 1.0), color=None, roughness=None,
                   metallic=None, scale: float = 1.0, bump: float = 0.3,
                   templates: MaterialTemplates | None = None) -> tuple[bpy.types.Material, dict]:
    """A new material of ``family``; what the recipe left open is drawn from ``rng``. Returns it and a
    record of every value it used. ``templates``: made as a copy of one made before (see shader_graph)."""
    palette, rough_range, metal_default, builder = FAMILIES[family]
    color = tuple(color) if color is not None else palette(rng)
    rough = roughness if roughness is not None else float(rng.uniform(*rough_range))
    metal = metallic if metallic is not None else (float(rng.uniform() < 0.2) if family == "random" else metal_default)
    graph = Graph(name, templates)

    def coords(size, stretch=(1.0, 1.0, 1.0)):
        return graph.coords(scale * size, [s * o for s, o in zip(stretch, object_scale)])

    pattern = builder(graph, coords, color, rough, metal, bump, rng)
    graph.material.diffuse_color = (*color, 1.0)  # the viewport's solid colour
    record = {"family": family, "color": [float(c) for c in color], "roughness": float(rough),
              "metallic": float(metal), "scale": float(scale), "bump": float(bump)}
    if pattern:
        record["pattern"] = pattern
    return graph.material, record


def assign_material(obj, stream, item: str, *, family: str, color=None, roughness=None, metallic=None,
                    scale: float = 1.0, bump: float = 0.3, per: str = "object",
                    templates: MaterialTemplates | None = None) -> None:
    """Give ``obj`` new procedural materials (one for all slots, or one per slot), recorded under ``item``."""
    slots = max(1, len(obj.material_slots))
    if not obj.material_slots:
        obj.data.materials.append(None)
    materials = []
    for k in range(slots if per == "slot" else 1):
        material, record = build_material(f"{obj.name}_{family}", family, stream.rng,
                                          object_scale=tuple(obj.scale), color=color, roughness=roughness,
                                          metallic=metallic, scale=scale, bump=bump, templates=templates)
        stream.record("material", record, item if per == "object" else f"{item}/{k}")
        materials.append(material)
    for k, slot in enumerate(obj.material_slots):
        slot.link = "OBJECT"
        slot.material = materials[k if per == "slot" else 0]
