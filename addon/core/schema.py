"""What the UI needs to know about each recipe field, read from the pydantic models themselves.

The add-on stores a recipe on the scene as generic records (one per component, one per field) and
draws them from these specs, so a field added to a component model appears in the panel, the
round trip and the validation without UI code of its own. Pure Python: no Blender here.

Widgets:
    value   a literal, a distribution or ``${param}`` (``V(domain)`` fields)
    enum    one word of ``choices``            text    a word or a name (``ref`` says what it names)
    path    a file or folder                   names   a list of names (``ref`` as for text)
    bool, int, float                           int2, float2   two numbers
    point   a generator name or [x, y, z]      flags   a subset of ``choices``
    weights {file stem: weight}
"""
from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from . import components as c
from .values import DISTRIBUTIONS, Domain

SECTIONS = ("generators", "modifiers", "randomizers", "sensors")
PATH_FIELDS = {*c.FILE_FIELDS, *(inner for _, inner in c.RECIPE_FILE_FIELDS)}
REFS = {"targets": "generator", "into": "generator", "surface": "generator", "look_at": "generator",
        "sensor": "sensor", "objects": "object", "collection": "collection", "mount": "sensor",
        "focus_on": "generator", "must_see": "generator"}


def _kinds(union) -> dict[str, type[BaseModel]]:
    inner = get_args(union)[0]
    models = get_args(inner) or (inner,)  # a Union of one model is that model
    return {get_args(m.model_fields["kind"].annotation)[0]: m for m in models}


KINDS: dict[str, dict[str, type[BaseModel]]] = {
    "generators": _kinds(c.Generator), "modifiers": _kinds(c.Modifier),
    "randomizers": _kinds(c.Randomizer), "sensors": _kinds(c.Sensor)}


QUALIFIED_BY_PARENT = ("scene", "preview")  # nested fields whose own name says too little ("base", "samples")


@dataclass(frozen=True)
class FieldSpec:
    key: str  # the recipe key (alias), dotted for nested models: "filters.min_visibility"
    widget: str
    optional: bool = False
    domain: Domain | None = None
    choices: tuple[str, ...] = ()
    ref: str | None = None
    part: int | None = None  # gradient[0] / gradient[1]: one value of a pair
    default: Any = None
    description: str = ""
    unit: str | None = None  # m, mm, deg, K, W, s (UNITS): the panel shows numbers in it

    @property
    def label(self) -> str:
        """The field's name for people; a nested field says where it belongs (Preview samples, Scene base)."""
        *parents, last = self.key.split(".")
        words = last.replace("_", " ")
        if parents and parents[-1] in QUALIFIED_BY_PARENT:
            words = f"{parents[-1]} {words}"
        name = display_name(words)
        if self.part is not None:
            name += (" bottom", " top")[self.part]
        return name

    @property
    def id(self) -> str:
        return self.key if self.part is None else f"{self.key}[{self.part}]"


def _strip_optional(annotation) -> tuple[Any, bool]:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) < len(get_args(annotation)):
            return (args[0] if len(args) == 1 else Union[tuple(args)]), True
    return annotation, False


def _domain(annotation) -> Domain | None:
    return next((m for m in getattr(annotation, "__metadata__", ()) if isinstance(m, Domain)), None)


def _spec(key: str, info, annotation, optional: bool, description: str) -> list[FieldSpec]:
    default = info.get_default(call_default_factory=True) if not info.is_required() else None
    if isinstance(default, BaseModel):
        default = default.model_dump(mode="json")
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    common = dict(optional=optional, description=description, default=default, unit=extra.get("unit"))
    base = key.split(".")[-1]
    domain = _domain(annotation)
    if domain is not None:
        return [FieldSpec(key, "value", domain=domain, **{**common, "unit": domain.unit})]
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is typing.Annotated:
        return _spec(key, info, args[0], optional, description)
    if origin is Literal:
        return [FieldSpec(key, "enum", choices=tuple(args), **common)]
    if origin is tuple:
        if all(_domain(a) for a in args):  # a pair of values (World.gradient)
            return [FieldSpec(key, "value", domain=_domain(a), part=i, **{**common, "unit": _domain(a).unit})
                    for i, a in enumerate(args)]
        inner = _strip_optional(args[0])[0]
        inner = get_args(inner)[0] if get_origin(inner) is typing.Annotated else inner
        return [FieldSpec(key, "int2" if inner is int else "float2", **common)]
    if annotation == c.Point:
        return [FieldSpec(key, "point", ref="generator", **{**common, "unit": "m"})]
    if origin is list:
        item = args[0]
        if get_origin(item) is Literal:
            return [FieldSpec(key, "flags", choices=tuple(get_args(item)), **common)]
        if base == "formats":
            from .dataset.convert import FORMATS

            return [FieldSpec(key, "flags", choices=tuple(FORMATS), **common)]
        return [FieldSpec(key, "names", ref=REFS.get(base), **common)]
    if origin is dict:
        return [FieldSpec(key, "weights", **common)]
    if annotation is bool:
        return [FieldSpec(key, "bool", **common)]
    if annotation is int:
        return [FieldSpec(key, "int", **common)]
    if annotation is float:
        return [FieldSpec(key, "float", **common)]
    if annotation is str:
        return [FieldSpec(key, "path" if base in PATH_FIELDS else "text", ref=REFS.get(base), **common)]
    raise TypeError(f"no widget for {key}: {annotation!r}")


def model_fields(model: type[BaseModel], prefix: str = "", skip: tuple[str, ...] = ("kind",)) -> list[FieldSpec]:
    """The specs of a model's fields in declaration order; nested models are flattened with dots."""
    out: list[FieldSpec] = []
    hints = typing.get_type_hints(model, include_extras=True)
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        key = prefix + (info.alias or name)
        annotation, optional = _strip_optional(hints[name])
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out += model_fields(annotation, key + ".", skip=())
            continue
        out += _spec(key, info, annotation, optional, info.description or "")
    return out


_CACHE: dict[type, list[FieldSpec]] = {}


def fields_of(model: type[BaseModel]) -> list[FieldSpec]:
    if model not in _CACHE:
        _CACHE[model] = model_fields(model)
    return _CACHE[model]


def component_model(section: str, kind: str) -> type[BaseModel]:
    try:
        return KINDS[section][kind]
    except KeyError:
        raise KeyError(f"{section} has no kind {kind!r}; kinds: {', '.join(KINDS.get(section, {}))}") from None


# -- distributions as the UI sees them --------------------------------------------------------------------
MODES = ("constant", *DISTRIBUTIONS, "param")
ARG_NAMES = {"constant": ("value",), "uniform": ("low", "high"), "normal": ("mean", "sigma"),
             "triangular": ("left", "mode", "right"), "randint": ("low", "high"),
             "sweep_linspace": ("start", "stop", "count"), "sweep_arange": ("start", "stop", "step"),
             "choice": (), "param": ()}


def modes_for(domain: Domain) -> tuple[str, ...]:
    """The value forms a field of ``domain`` can take (what the panel offers)."""
    if domain.kind == "file":
        return ("constant", "choice")
    if domain.kind in ("text", "bool"):
        return ("constant", "choice", "param")
    if domain.kind == "int":
        return ("constant", "randint", "choice", "sweep_linspace", "sweep_arange", "param")
    if domain.kind == "vector":
        return ("constant", "uniform", "normal", "triangular", "choice", "param")
    return MODES


def slot(domain: Domain, mode: str, position: int) -> str:
    """Which stored slot holds argument ``position`` of ``mode`` for a field of ``domain``:
    f (float), i (int), v (3-vector), c (colour), text, path or flag. Clip bounds of ``normal`` are 2 and 3."""
    if domain.kind == "file":
        return "path"
    if mode == "randint" or (mode == "sweep_linspace" and position == 2):
        return "i"
    if mode in ("sweep_linspace", "sweep_arange"):
        return "f"
    if domain.kind == "text":
        return "text"
    if domain.kind == "bool":
        return "flag"
    if domain.kind == "int":
        return "i"
    if domain.kind == "vector":
        return "c" if is_colour(domain) else "v"
    return "f"


def is_colour(domain: Domain) -> bool:
    return domain.kind == "vector" and domain.size == 3 and domain.ge == 0 and domain.le == 1


# -- names as people read them ---------------------------------------------------------------------------------
UNITS = {"m": "metres", "mm": "millimetres", "deg": "degrees", "K": "kelvin", "W": "watts", "s": "seconds"}
ACRONYMS = {"rgb": "RGB", "coco": "COCO", "yolo": "YOLO", "kitti": "KITTI", "voc": "VOC", "bop": "BOP", "hdri": "HDRI",
            "fov": "FOV", "hsv": "HSV", "exr": "EXR", "png": "PNG", "id": "ID", "ids": "IDs", "rle": "RLE",
            "2d": "2D", "3d": "3D", "6d": "6D", "gpu": "GPU", "cpu": "CPU"}


def display_name(word: str) -> str:
    """A recipe word (key, kind, choice) as a label: ``instance_mask`` -> "Instance mask", ``coco-polygons`` ->
    "COCO polygons", ``boxes2d`` -> "Boxes 2D", ``hdri`` -> "HDRI". Words already in capitals stay as written."""
    if not word or word != word.lower():
        return word
    parts = []
    for part in re.split(r"[_\s-]+", word):
        head, digits = re.fullmatch(r"(.*?)(\d[a-z])?", part).groups()  # boxes2d -> boxes 2D; k1 stays k1
        for piece in (head, digits):
            if piece:
                parts.append(ACRONYMS.get(piece, piece))
    text = " ".join(parts)
    return text[:1].upper() + text[1:]


# -- the recipe's own fields and scalars stored as text ------------------------------------------------------
def top_fields() -> list[FieldSpec]:
    """Recipe fields outside the lists: name, description, scene.base, output.*, frames."""
    from .recipe import Recipe

    skip = {"version", "parameters", "constraints", *SECTIONS}
    return [f for f in fields_of(Recipe) if f.key.split(".")[0] not in skip]


def scalar_text(value: Any) -> str:
    """A YAML scalar as one line of text (choices of a parameter, the right side of a constraint)."""
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def scalar_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


# -- what each field means (tooltips in the panel; a kind-specific entry wins over the plain key) ------------
FIELD_HELP = {
    "count": "How many objects this generator makes per job",
    "class": "Class label of the objects (empty: unlabelled background, no annotations)",
    "class_from": "fixed: every object gets Class; asset_name: each object is labelled with its asset's file name",
    "shape": "Which primitive mesh",
    "size": "Bounding-box dimensions X, Y, Z in metres",
    "color": "Base colour red, green, blue in [0, 1] (linear)",
    "location": "Where the object's base centre stands (m), before randomizers move it",
    "source": "Mesh files (.blend .obj .ply .stl .glb .gltf): a file, a folder, a glob or a choice; one drawn per object",
    "object": "Object or collection to take from the .blend (empty: all its meshes)",
    "weights": "Relative weight per asset file name (others weigh 1)",
    "objects": "Objects of this scene that the recipe labels and moves",
    "collection": "A collection of this scene whose objects the recipe uses",
    "targets": "Generators whose objects this component changes",
    "hue": "Hue in [0, 1] (left out: the asset's own)",
    "saturation": "Saturation in [0, 1] (left out: the asset's own)",
    "value": "Brightness in [0, 1] (left out: the asset's own)",
    "material": "Material name, usually a choice of several from the library",
    "library": "A .blend holding the materials (left out: materials of this file); a set draws one per job",
    "hue_shift": "Turns every hue by this fraction of the colour circle, also of textured colours",
    "saturation_scale": "Multiplies the saturation, also of textured colours",
    "value_scale": "Multiplies the brightness, also of textured colours",
    "roughness_scale": "Multiplies the roughness (texture or value)",
    "metallic_scale": "Multiplies the metallic amount (texture or value)",
    "normal_scale": "Multiplies the strength of normal and bump maps",
    "family": "Material family: plastic, painted_metal, brushed_metal, bare_metal, wood, stone, concrete, fabric, "
              "rubber, ceramic, or random (domain-randomization textures)",
    "procedural_material.color": "Main colour (left out: drawn from the family's colours)",
    "roughness": "Surface roughness in [0, 1] (left out: the family's)",
    "metallic": "Metallic amount in [0, 1] (left out: the family's)",
    "procedural_material.scale": "Size of the pattern (larger: coarser)",
    "bump": "Strength of the surface relief",
    "per": "object: one material per object; slot: one per material slot",
    "textures": "Texture set folders (ambientCG or Poly Haven map names): a folder of them, one, a glob or a choice",
    "texture_set.scale": "Metres per texture tile",
    "texture_set.rotation": "Rotation of the texture about the mapping axes (degrees)",
    "shapes": "Primitive shapes the distractors take (when no source is given)",
    "distractors.source": "Assets to use as distractors instead of primitives",
    "distractors.size": "Largest dimension of each distractor (m)",
    "distance": "Distance from the camera along its optical axis (m)",
    "margin": "Fraction of the image kept free at each border",
    "images": "Backplate images: a file, a folder, a glob or a choice",
    "zoom": "Extra zoom beyond covering the image (1: just covers it)",
    "flip": "Chance of a mirrored backplate",
    "gain": "Brightness factor",
    "white_balance": "Red, green, blue factors",
    "vignetting": "Darkening at the image corners (fraction)",
    "chromatic_shift": "Red and blue offset at the corners (px)",
    "blur": "Gaussian blur sigma (px)",
    "motion_blur": "Motion blur streak length (px)",
    "motion_angle": "Motion blur direction (degrees)",
    "noise": "Gaussian sensor noise sigma (fraction of full scale)",
    "photons": "Poisson shot noise: photons at full scale (fewer: noisier)",
    "jpeg_quality": "JPEG compression quality (1-100)",
    "world.temperature": "White balance of the world light: blackbody temperature in kelvin",
    "background": "What the camera sees behind the scene instead of the world (the lighting stays)",
    "view_transform": "Colour management view transform (AgX by default; Standard clips highlights)",
    "look": "Contrast look of the view transform (Punchy and Greyscale: AgX only)",
    "exposure": "Exposure in stops",
    "gamma": "Display gamma",
    "factor": "Uniform scale factor",
    "probability": "Chance that each object is hidden in a job",
    "position": "Where objects go: X, Y, Z in metres",
    "rotation": "uniform: any orientation; yaw: about Z only; none: keep",
    "surface": "A generator whose top the objects are placed on (left out: the ground plane)",
    "area": "X, Y extent of the placement area (m), used when no surface is named",
    "gap": "Smallest distance between placed objects (m)",
    "yaw": "Turn each placed object about Z at random",
    "max_tries": "Placement attempts per object before it is left out",
    "into": "A generator whose objects become a container the objects fall into",
    "floor": "Height of an invisible ground (m); off: no ground",
    "height": "Drop height above the floor or container (m)",
    "spread": "Horizontal spread of the drop positions (m)",
    "seconds": "Simulated time of the drop (s)",
    "sensor": "The camera this component moves (left out: every camera)",
    "radius": "Distance from the aim point (m)",
    "azimuth": "Angle about Z in degrees (0 = +X)",
    "elevation": "Angle above the horizon in degrees",
    "speed": "Degrees per frame in sequences",
    "look_at": "What to aim at: a generator's objects or a fixed point",
    "type": "Light type: POINT, SUN, SPOT or AREA",
    "energy": "Power in W (W/m2 for SUN)",
    "temperature": "Colour temperature in kelvin",
    "world.color": "A plain background colour",
    "gradient": "A vertical background gradient: bottom and top colours",
    "hdri": "HDR environment images: a file, a folder, a glob, a choice, or blender:NAME (Blender's own: city, "
            "courtyard, forest, interior, night, studio, sunrise, sunset; blender:* for all)",
    "strength": "Brightness of the background",
    "world.rotation": "Rotation of the HDR image about Z in degrees",
    "resolution": "Image width and height in pixels",
    "focal_length": "Lens focal length in mm (or give fov)",
    "fov": "Horizontal field of view in degrees (or give focal_length)",
    "sensor_width": "Sensor width in mm",
    "samples": "Cycles samples per pixel",
    "denoise": "Denoise full-quality renders with OpenImageDenoise (labels are unaffected)",
    "clip": "Nearest and farthest visible distance (m)",
    "cycles.adaptive_sampling": "Cycles stops sampling pixels that are clean enough (left out: the scene's setting)",
    "cycles.adaptive_threshold": "Noise level at which adaptive sampling stops a pixel; higher is faster and noisier "
                                 "(left out: the scene's, Blender's 0.01)",
    "cycles.max_bounces": "Most light bounces of any kind; fewer is faster and darker in deep corners (left out: the "
                          "scene's, Blender's 12)",
    "cycles.light_tree": "Sample many lights by importance (left out: the scene's setting)",
    "cycles.persistent_data": "Keep scene data between renders of a process (left out: on)",
    "cycles.world_map": "Height in pixels of the world's light importance map, built again each time the world "
                        "changes; smaller is faster, 0 is none (left out: the world's own, Blender's automatic)",
    "cycles.denoiser": "Denoiser at full quality: openimagedenoise, or optix on an NVIDIA GPU (left out: "
                       "openimagedenoise)",
    "cycles.denoise_quality": "OpenImageDenoise quality: high, balanced or fast (left out: the scene's, high)",
    "cycles.preview.adaptive_sampling": "Adaptive sampling at the preview tier (left out: as at full quality)",
    "cycles.preview.adaptive_threshold": "Adaptive sampling's noise level at the preview tier (left out: as at full "
                                         "quality)",
    "cycles.preview.max_bounces": "Most light bounces at the preview tier (left out: as at full quality)",
    "cycles.preview.light_tree": "Light tree at the preview tier (left out: as at full quality)",
    "cycles.preview.persistent_data": "Persistent data at the preview tier (left out: as at full quality)",
    "cycles.preview.world_map": "The world's importance map height at the preview tier (left out: as at full quality)",
    "outputs": "Image outputs written per frame (labels are always complete)",
    "description": "What this dataset is for",
    "scene.base": "A .blend to start from in headless runs (in Blender the open scene is the base)",
    "output.formats": "Export formats written after the batch (native is always written)",
    "output.class_map": "A class map YAML: class ids, names, rules",
    "output.filters.min_visibility": "Exports drop objects less visible than this fraction",
    "output.filters.min_pixels": "Exports drop objects with fewer visible pixels",
    "output.filters.drop_truncated": "Exports drop objects cut by the image border",
    "output.filters.ignore_classes": "Classes the exports leave out",
    "output.val_fraction": "Fraction of images in the validation split (COCO, YOLO, VOC)",
    "output.test_fraction": "Fraction of images in a test split (COCO, YOLO, VOC)",
    "output.preview.scale": "Image scale of preview renders",
    "output.preview.samples": "Samples of preview renders",
    "frames": "Frames per job (more than 1: a sequence)",
    "frame_rate": "Frames per second of a sequence: physics, motion speeds and the video use it",
    "principal_point": "Principal point offset from the image centre in pixels (x right, y down)",
    "lens_model": "pinhole; brown_conrady (OpenCV k1, k2, k3, p1, p2); fisheye (Kannala-Brandt k1..k4)",
    "k1": "Radial distortion coefficient k1 (OpenCV)",
    "k2": "Radial distortion coefficient k2 (OpenCV)",
    "k3": "Radial distortion coefficient k3 (OpenCV)",
    "k4": "Fisheye distortion coefficient k4 (OpenCV fisheye)",
    "p1": "Tangential distortion coefficient p1 (Brown-Conrady)",
    "p2": "Tangential distortion coefficient p2 (Brown-Conrady)",
    "fstop": "Aperture f-number for depth of field (left out: everything sharp; labels are never blurred)",
    "focus_distance": "Distance in focus (m)",
    "focus_on": "A generator whose first object is kept in focus",
    "shutter": "Motion blur: how long the shutter is open, in frames (0: none; labels are at the frame's time)",
    "mount": "Another sensor this camera is fixed to (a rig); camera randomizers move the rig's root",
    "mount_offset": "Position on the mount in metres, in its camera frame (x right, y down, z forward)",
    "mount_rotation": "Rotation on the mount in degrees about its x, y, z axes",
    "stereo_baseline": "Make a rectified stereo pair: the right view <name>_right sits this far (m) along x",
    "avoid_collisions": "Draw again any pose that touches an object already in the scene",
    "on_shortfall": "When an object finds no free place: hide it (recorded) or stop with an error",
    "max_slope": "Steepest face (degrees from flat) that objects may rest on",
    "align_to_normal": "Stand objects along the face's normal instead of straight up",
    "mass": "Mass of each object (kg)",
    "friction": "Friction of each object (0 to 1)",
    "restitution": "Bounciness of each object (0 to 1)",
    "must_see": "Generators whose objects this camera must see; poses that do not are drawn again",
    "min_visible": "Smallest unoccluded fraction of each object's silhouette in the frame",
    "min_in_frame": "Smallest fraction of each object's silhouette inside the frame",
    "min_pixels": "Fewest visible pixels per object (estimated)",
    "see_all": "Every object of must_see must be seen (off: at least one)",
    "max_draws": "Poses drawn before the best one is kept (and the shortfall recorded)",
    "velocity": "Speed along X, Y, Z in metres per second (drawn per object)",
    "spin": "Turning speed about X, Y, Z in degrees per second (drawn per object)",
    "start": "Where the camera path starts (m)",
    "end": "Where the camera path ends (m)",
    "via": "A point the path passes through on the way (a smooth spline); left out: a straight dolly",
    "camera_path.look_at": "What the camera aims at along the path (left out: along the path)",
    "amplitude": "Shake of the camera's position (m)",
    "angle": "Shake of the camera's aim (degrees)",
    "frequency": "How fast the camera shakes (about this many times a second)",
    "farm.hang_after": "Seconds a farm worker may spend on one frame before its job counts as hung (0: the "
                       "coordinator's setting); raise it for long frames",
}


def field_help(kind: str, spec: FieldSpec) -> str:
    """The tooltip of a field: what it means and what it accepts."""
    text = FIELD_HELP.get(f"{kind}.{spec.key}") or FIELD_HELP.get(spec.key) or spec.description or spec.label
    if spec.domain is not None:
        text += f". Takes {spec.domain.describe()}: a constant, a distribution or ${{parameter}}"
    elif spec.choices:
        text += f". One of: {', '.join(spec.choices)}"
    return text + ("" if spec.optional is False else ". Optional")
