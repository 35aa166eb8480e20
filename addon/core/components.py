"""The recipe's components: generators (what appears), modifiers (how it looks), randomizers (where
things go) and sensors (what is captured). Each is a pydantic model told apart by ``kind``.

A field typed ``V(domain)`` holds a :mod:`values` spec (literal, distribution or ``${parameter}``);
the engine draws it through the component's own random stream.
"""
from __future__ import annotations

from typing import Annotated, Any, Iterator, Literal, Optional, Union, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

from . import values as value_specs
from .values import Domain, ValueSpec, parse_value


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True,
                              validate_assignment=False)


def V(domain: Domain):  # noqa: N802 - reads as a type in field declarations
    """A field holding a value spec checked against ``domain``."""
    return Annotated[Any, BeforeValidator(lambda data: parse_value(data, domain)),
                     PlainSerializer(lambda spec: spec.to_data(), return_type=Any), domain]


RECIPE_FILE_FIELDS = (("scene", "base"), ("output", "class_map"))  # the recipe's own files (one path each)

# Domains used by several fields (``unit`` is what the panel shows: metres, degrees, kelvin, watts, ...).
COUNT = Domain("int", ge=0, le=10000)
POSITIVE = Domain("float", gt=0)
NONNEG = Domain("float", ge=0)
UNIT = Domain("float", ge=0, le=1)
ANGLE = Domain("float", unit="deg")
ELEVATION = Domain("float", ge=-90, le=90, unit="deg")
DISTANCE = Domain("float", gt=0, unit="m")
LENGTH = Domain("float", ge=0, unit="m")
HEIGHT = Domain("float", unit="m")
REAL = Domain("float")
VEC3 = Domain("vector", size=3, unit="m")  # a position
ROTATION3 = Domain("vector", size=3, unit="deg")  # XYZ Euler angles
SIZE3 = Domain("vector", size=3, gt=0, unit="m")
COLOR = Domain("vector", size=3, ge=0, le=1)
PROBABILITY = UNIT
TEXT = Domain("text")
LIGHT_TYPE = Domain("text", choices=("POINT", "SUN", "SPOT", "AREA"))
KELVIN = Domain("float", ge=1000, le=40000, unit="K")
WATTS = Domain("float", ge=0, unit="W")
MM = Domain("float", gt=0, unit="mm")
IMAGE_TYPES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")  # backplates (8-bit photographs)
# File sets (see values.py): each file field has one domain, whatever component it is in.
FILE_DOMAINS = {
    "source": Domain("file", extensions=(".blend", ".obj", ".ply", ".stl", ".glb", ".gltf")),
    "library": Domain("file", extensions=(".blend",)),
    "hdri": Domain("file", extensions=(".exr", ".hdr"), builtin=True),
    "textures": Domain("file", folders=True),
    "images": Domain("file", extensions=IMAGE_TYPES),
}
FILE_FIELDS = tuple(FILE_DOMAINS)  # component fields that name files or folders
FAMILIES = ("plastic", "painted_metal", "brushed_metal", "bare_metal", "wood", "stone", "concrete", "fabric",
            "rubber", "ceramic", "random")
FAMILY = Domain("text", choices=FAMILIES)
VIEW_TRANSFORMS = ("AgX", "Filmic", "Standard", "Khronos PBR Neutral", "ACES 1.3", "ACES 2.0")
LOOKS = ("None", "Very High Contrast", "High Contrast", "Medium High Contrast", "Medium Contrast",
         "Medium Low Contrast", "Low Contrast", "Very Low Contrast", "Punchy", "Greyscale")


def unit(symbol: str) -> dict:
    """The unit of a plain number field: ``Field(..., json_schema_extra=unit("m"))``."""
    return {"unit": symbol}


def FileSet(field: str):  # noqa: N802 - reads as a type
    """A file-set field: a path, a folder, a glob or {choice: [...]} (see values.py)."""
    return V(FILE_DOMAINS[field])

PRIMITIVE_SHAPES = ("cube", "sphere", "cylinder", "cone", "torus", "plane", "monkey")
Targets = Annotated[list[str], Field(min_length=1)]
LIST_REFS = ("targets", "must_see")  # fields holding lists of generator names
CAMERA_MOVERS = ("camera_orbit", "camera_shell", "camera_path", "camera_shake")  # move a rig's root camera
Point = Union[str, tuple[float, float, float]]  # a generator name or a point [x, y, z]


class Component(StrictModel):
    name: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9_.-]+$")

    def generator_refs(self) -> dict[str, list[str]]:
        """Fields that name generators: {field: [names]}."""
        refs: dict[str, list[str]] = {}
        for field in ("targets", "into", "surface", "look_at", "must_see", "focus_on"):
            value = getattr(self, field, None)
            if isinstance(value, str):
                refs[field] = [value]
            elif field in LIST_REFS and value:
                refs[field] = list(value)
        return refs

    def file_refs(self) -> dict[str, ValueSpec]:
        """Fields that name files or folders (relative to the recipe): {field: file set}."""
        return {f: getattr(self, f) for f in FILE_FIELDS if getattr(self, f, None) is not None}


def value_fields(comp: BaseModel) -> Iterator[tuple[str, ValueSpec]]:
    for field in type(comp).model_fields:
        value = getattr(comp, field)
        if isinstance(value, ValueSpec):
            yield field, value
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, ValueSpec):
                    yield f"{field}[{i}]", item


def domain_of(comp: BaseModel, field: str) -> Domain:
    """The Domain declared for ``field`` (``name`` or ``name[i]``) of a component."""
    info = type(comp).model_fields[field.split("[")[0]]
    found = _find_domain(info.metadata) or _find_domain([info.annotation])
    if found is None:
        raise KeyError(f"{type(comp).__name__}.{field} is not a value field")
    return found


def _find_domain(items) -> Domain | None:
    for item in items:
        if isinstance(item, Domain):
            return item
        found = _find_domain(getattr(item, "__metadata__", ())) or _find_domain(get_args(item))
        if found:
            return found
    return None


# -- generators ---------------------------------------------------------------------------------------
class GeneratorBase(Component):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    count: V(COUNT) = 1
    class_: Optional[str] = Field(None, alias="class", description="class label; none = unlabelled background")
    class_from: Literal["fixed", "asset_name"] = "fixed"


class PrimitiveGenerator(GeneratorBase):
    kind: Literal["primitive"]
    shape: Literal[PRIMITIVE_SHAPES]  # type: ignore[valid-type]
    size: V(SIZE3) = 0.2  # bounding-box dimensions in metres
    color: V(COLOR) = [0.8, 0.8, 0.8]
    location: V(VEC3) = 0.0


class AssetGenerator(GeneratorBase):
    kind: Literal["asset"]
    source: FileSet("source")  # .blend, .obj, .ply, .stl, .glb, .gltf (a set: one drawn per object)
    object: Optional[str] = None  # object or collection name inside a .blend
    location: V(VEC3) = 0.0


class AssetDirGenerator(GeneratorBase):
    kind: Literal["asset_dir"]
    source: FileSet("source")  # a folder (or any set) of assets; one is picked per instance
    weights: Optional[dict[str, float]] = None  # file stem -> weight (others weigh 1)


class SceneGenerator(GeneratorBase):
    """Objects already in the base .blend, chosen by name or collection (``count`` is ignored)."""

    kind: Literal["scene"]
    objects: list[str] = []
    collection: Optional[str] = None

    @model_validator(mode="after")
    def _something(self):
        if not self.objects and not self.collection:
            raise ValueError("a scene generator needs objects: [names] or collection: name")
        return self


class Distractors(Component):
    """Class-less clutter (never labelled): primitives, or assets from ``source``, with random materials.
    Place them with ``pose_in_view`` (in the camera's view) or ``scatter_on_surface``."""

    kind: Literal["distractors"]
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    count: V(COUNT) = {"randint": [3, 10]}
    shapes: list[Literal[PRIMITIVE_SHAPES]] = [s for s in PRIMITIVE_SHAPES if s != "plane"]  # type: ignore[valid-type]
    source: Optional[FileSet("source")] = None  # assets instead of primitives
    size: V(DISTANCE) = {"uniform": [0.03, 0.2]}  # largest dimension
    family: V(FAMILY) = {"choice": list(FAMILIES)}


Generator = Annotated[Union[PrimitiveGenerator, AssetGenerator, AssetDirGenerator, SceneGenerator, Distractors],
                      Field(discriminator="kind")]


# -- modifiers ----------------------------------------------------------------------------------------
class ColorVariation(Component):
    """hue/saturation/value set a plain base colour; the shifts and scales act through a stage in front of
    the base colour, whatever feeds it (an image texture too), and jitter roughness, metallic and normal
    strength. A field left out keeps the asset's own."""

    kind: Literal["color_variation"]
    targets: Targets
    hue: Optional[V(UNIT)] = None
    saturation: Optional[V(UNIT)] = None
    value: Optional[V(UNIT)] = None
    hue_shift: Optional[V(Domain("float", ge=-0.5, le=0.5))] = None
    saturation_scale: Optional[V(NONNEG)] = None
    value_scale: Optional[V(NONNEG)] = None
    roughness_scale: Optional[V(NONNEG)] = None
    metallic_scale: Optional[V(NONNEG)] = None
    normal_scale: Optional[V(NONNEG)] = None


class ProceduralMaterial(Component):
    """New physically based materials from procedural families built with Blender's nodes (mapped by
    object coordinates: no UVs needed). Colour, roughness and metallic left out come from the family."""

    kind: Literal["procedural_material"]
    targets: Targets
    family: V(FAMILY) = {"choice": [f for f in FAMILIES if f != "random"]}
    color: Optional[V(COLOR)] = None
    roughness: Optional[V(UNIT)] = None
    metallic: Optional[V(UNIT)] = None
    scale: V(POSITIVE) = {"uniform": [0.5, 2.0]}  # pattern size factor
    bump: V(UNIT) = {"uniform": [0.1, 0.5]}
    per: Literal["object", "slot"] = "object"


class TextureSet(Component):
    """PBR materials from folders of texture maps (ambientCG or Poly Haven names), box-mapped."""

    kind: Literal["texture_set"]
    targets: Targets
    textures: FileSet("textures")  # a folder of set folders, a set folder, a glob or {choice: [...]}
    scale: V(DISTANCE) = 1.0  # the size of one texture tile
    rotation: V(ANGLE) = {"uniform": [0, 360]}
    per: Literal["object", "slot"] = "object"


class MaterialSwap(Component):
    kind: Literal["material_swap"]
    targets: Targets
    material: V(TEXT)  # a material name, usually {choice: [...]}
    library: Optional[FileSet("library")] = None  # a .blend holding the materials (a set: one drawn per job)


class ScaleJitter(Component):
    kind: Literal["scale_jitter"]
    targets: Targets
    factor: V(POSITIVE) = {"uniform": [0.8, 1.2]}


class RandomHide(Component):
    kind: Literal["random_hide"]
    targets: Targets
    probability: V(PROBABILITY) = 0.2


Modifier = Annotated[Union[ColorVariation, ProceduralMaterial, TextureSet, MaterialSwap, ScaleJitter, RandomHide],
                     Field(discriminator="kind")]


# -- randomizers --------------------------------------------------------------------------------------
class Placement(Component):
    """What a placement does when an object finds no free pose in ``max_tries`` draws: ``hide`` it (the
    shortfall is recorded in the metadata) or stop the job with an ``error``."""

    max_tries: int = Field(200, ge=1, le=100000)
    on_shortfall: Literal["hide", "error"] = "hide"


class PoseInVolume(Placement):
    """Poses drawn in a volume; with ``avoid_collisions`` a pose that touches any object already in the
    scene (the base .blend, containers, objects other randomizers placed) is drawn again (off by default:
    poses in a volume may float through things, as they always did)."""

    kind: Literal["pose_in_volume"]
    targets: Targets
    position: V(VEC3) = {"uniform": [[-0.5, -0.5, 0.0], [0.5, 0.5, 1.0]]}
    rotation: Literal["uniform", "yaw", "none"] = "uniform"  # uniform = uniform over SO(3)
    avoid_collisions: bool = False
    gap: V(LENGTH) = 0.0


class PoseInView(Component):
    """Places targets inside a camera's view: a random pixel, at a drawn distance along the optical axis,
    in a random orientation (distractors that float in front of the scene)."""

    kind: Literal["pose_in_view"]
    targets: Targets
    sensor: Optional[str] = None  # which camera; the first when omitted
    distance: V(DISTANCE) = {"uniform": [0.3, 1.5]}  # along the optical axis
    margin: V(Domain("float", ge=0, le=0.45)) = 0.05  # fraction of the image kept free at each border
    rotation: Literal["uniform", "yaw", "none"] = "uniform"


class ScatterOnSurface(Placement):
    """Places targets resting on the upward faces of ``surface``'s meshes (or on the plane z = area[2] within
    ``area``), clear of every object already in the scene."""

    kind: Literal["scatter_on_surface"]
    targets: Targets
    surface: Optional[str] = None
    area: V(Domain("vector", size=3, ge=0, unit="m")) = [1.0, 1.0, 0.0]  # x, y extent used when no surface is named
    gap: V(LENGTH) = 0.01
    yaw: bool = True
    max_slope: float = Field(30.0, ge=0, le=89)  # degrees: faces steeper than this are not "up"
    align_to_normal: bool = False  # stand objects along the face normal (sloped surfaces) instead of +Z


class PhysicsDrop(Component):
    """Drops targets from above onto a floor or into a container; the result is frozen (frames=1) or
    becomes the motion of a sequence (frames>1)."""

    kind: Literal["physics_drop"]
    targets: Targets
    into: Optional[str] = None  # a generator whose objects become passive colliders
    floor: Optional[float] = Field(0.0, json_schema_extra=unit("m"))  # height of an invisible ground; null: none
    height: V(LENGTH) = {"uniform": [0.3, 0.8]}
    spread: V(LENGTH) = 0.15
    seconds: float = Field(2.0, gt=0, le=60, json_schema_extra=unit("s"))
    mass: V(POSITIVE) = 1.0  # kg, per object
    friction: V(UNIT) = 0.5
    restitution: V(UNIT) = 0.0  # bounciness


class Looking(Component):
    """A camera randomizer that must see something: with ``must_see``, a pose is drawn again (up to
    ``max_draws``) until the objects of those generators are in view and visible enough, judged from their
    geometry (no render). The rejected draws are logged; when none passes, the best one is kept and the
    shortfall recorded. In a sequence the pose is checked at the first frame."""

    must_see: list[str] = []
    min_visible: float = Field(0.5, ge=0, le=1)
    min_in_frame: float = Field(0.9, ge=0, le=1)
    min_pixels: int = Field(0, ge=0)
    see_all: bool = True
    max_draws: int = Field(20, ge=1, le=1000)

class CameraOrbit(Looking):
    kind: Literal["camera_orbit"]
    sensor: Optional[str] = None  # which camera; all when omitted
    radius: V(DISTANCE) = 2.0
    height: V(HEIGHT) = 1.0
    azimuth: V(ANGLE) = {"uniform": [0, 360]}
    speed: V(ANGLE) = 0.0  # degrees per frame for sequences
    look_at: Point = (0.0, 0.0, 0.0)


class OnShell(Component):
    """Placement on a sphere around ``look_at``: distance, elevation and azimuth in degrees."""

    radius: V(DISTANCE) = {"uniform": [1.5, 3.0]}
    elevation: V(ELEVATION) = {"uniform": [15, 70]}
    azimuth: V(ANGLE) = {"uniform": [0, 360]}
    look_at: Point = (0.0, 0.0, 0.0)


class CameraShell(OnShell, Looking):
    kind: Literal["camera_shell"]
    sensor: Optional[str] = None


class Lights(OnShell):
    kind: Literal["lights"]
    count: V(COUNT) = 1
    type: V(LIGHT_TYPE) = "POINT"
    energy: V(WATTS) = 500.0  # W (W/m2 for SUN)
    temperature: V(KELVIN) = 6500.0
    radius: V(DISTANCE) = {"uniform": [2.0, 4.0]}
    elevation: V(ELEVATION) = {"uniform": [20, 80]}


class World(Component):
    """The background and ambient light: one of colour, vertical gradient or HDRI image (a set: one drawn
    per job; ``blender:NAME`` is one of Blender's own). ``background`` is what the camera sees instead
    (the lighting stays); a backplate randomizer replaces it by an image."""

    kind: Literal["world"]
    color: Optional[V(COLOR)] = None
    gradient: Optional[tuple[V(COLOR), V(COLOR)]] = None  # [bottom, top]
    hdri: Optional[FileSet("hdri")] = None
    strength: V(NONNEG) = 1.0
    rotation: V(ANGLE) = 0.0  # HDRI rotation about z, degrees
    temperature: Optional[V(KELVIN)] = None  # white balance of the light: a blackbody tint
    background: Optional[V(COLOR)] = None

    @model_validator(mode="after")
    def _one_background(self):
        given = [k for k in ("color", "gradient", "hdri") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"choose one of color, gradient, hdri (got {', '.join(given)})")
        if not given:
            raise ValueError("needs one of color, gradient, hdri")
        return self


class Backplate(Component):
    """A photograph behind the scene (after the render, where no object is: masks, boxes and depth are
    unchanged). Scaled to cover the image, then cropped at a random place."""

    kind: Literal["backplate"]
    sensor: Optional[str] = None  # which camera; all when omitted
    images: FileSet("images")
    zoom: V(Domain("float", ge=1, le=10)) = {"uniform": [1.0, 1.5]}  # beyond covering the image
    flip: V(PROBABILITY) = 0.5  # chance of a mirrored backplate


UNIT_OR_NONE = Optional[V(UNIT)]


class ImageEffects(Component):
    """Camera effects on the RGB image after the render (masks and labels untouched). A field left out
    is off; each is drawn per frame and recorded."""

    kind: Literal["image_effects"]
    sensor: Optional[str] = None  # which camera; all when omitted
    gain: Optional[V(POSITIVE)] = None  # brightness factor
    white_balance: Optional[V(Domain("vector", size=3, gt=0, le=4))] = None  # red, green, blue factors
    vignetting: UNIT_OR_NONE = None  # darkening at the corners (fraction)
    chromatic_shift: Optional[V(Domain("float", ge=0, le=20))] = None  # red/blue offset at the corners (px)
    blur: Optional[V(Domain("float", ge=0, le=20))] = None  # Gaussian sigma (px)
    motion_blur: Optional[V(Domain("float", ge=0, le=100))] = None  # streak length (px)
    motion_angle: V(ANGLE) = {"uniform": [0, 180]}  # streak direction (degrees)
    noise: UNIT_OR_NONE = None  # Gaussian sensor noise sigma (fraction of full scale)
    photons: Optional[V(Domain("float", ge=1, le=1e6))] = None  # Poisson shot noise: photons at full scale
    jpeg_quality: Optional[V(Domain("int", ge=1, le=100))] = None


class ObjectMotion(Component):
    """Targets move during a sequence: each at its own drawn velocity (m/s) and spin (degrees/s about
    x, y, z), from where the randomizers before this one left it."""

    kind: Literal["object_motion"]
    targets: Targets
    velocity: V(Domain("vector", size=3)) = {"uniform": [[-0.2, -0.2, 0.0], [0.2, 0.2, 0.0]]}  # m/s
    spin: V(ROTATION3) = 0.0  # per second


class CameraPath(Looking):
    """The camera travels during a sequence from ``start`` to ``end``: a straight dolly, or a smooth spline
    through ``via`` as well; it aims at ``look_at`` (left out: along the path)."""

    kind: Literal["camera_path"]
    sensor: Optional[str] = None
    start: V(VEC3) = [0.0, -3.0, 1.5]
    end: V(VEC3) = [1.0, -2.5, 1.5]
    via: Optional[V(VEC3)] = None
    look_at: Optional[Point] = (0.0, 0.0, 0.0)


class CameraShake(Component):
    """Hand-held shake on top of the camera's pose in every frame: smooth random offsets (metres) and
    rotations (degrees) at about ``frequency`` Hz."""

    kind: Literal["camera_shake"]
    sensor: Optional[str] = None
    amplitude: V(LENGTH) = 0.01
    angle: V(Domain("float", ge=0, unit="deg")) = 0.5
    frequency: V(POSITIVE) = 2.0


Randomizer = Annotated[Union[PoseInVolume, PoseInView, ScatterOnSurface, PhysicsDrop, CameraOrbit, CameraShell, Lights,
                             World, Backplate, ImageEffects, ObjectMotion, CameraPath, CameraShake],
                       Field(discriminator="kind")]


# -- sensors ------------------------------------------------------------------------------------------
# Image outputs written per frame. The labels (boxes2d, boxes3d, pose6d, keypoints) are always complete in the
# annotation files; naming them here is allowed, for recipes that list what they use. ``flow`` (forward and
# backward optical flow), ``disparity`` (stereo sensors: the left view's) and ``video`` (an MP4 per job) are
# asked for by name.
OUTPUTS = ("rgb", "depth", "normals", "instance_mask", "semantic_mask", "boxes2d", "boxes3d", "pose6d")
EXTRA_OUTPUTS = ("flow", "disparity", "video")
LENS_MODELS = ("pinhole", "brown_conrady", "fisheye")
COEFFICIENTS = {"pinhole": (), "brown_conrady": ("k1", "k2", "p1", "p2", "k3"), "fisheye": ("k1", "k2", "k3", "k4")}


class CyclesTier(StrictModel):
    """Cycles settings that trade render time for noise, for one quality tier. Each left out keeps what the
    scene has (Blender's factory value, or the base .blend's), so a recipe without them renders as before."""

    adaptive_sampling: Optional[bool] = None  # stop sampling pixels that are clean enough
    adaptive_threshold: Optional[float] = Field(None, gt=0, le=1)  # the noise level that is clean enough
    max_bounces: Optional[int] = Field(None, ge=0, le=1024)  # light bounces of any kind (with the scene's per-kind caps)
    light_tree: Optional[bool] = None  # sample many lights by importance (Blender 3.5+)
    persistent_data: Optional[bool] = None  # keep scene data between renders (left out: on)
    # Height in pixels of the world's light importance map, built again whenever the world changes (every job with a
    # world randomizer); 0: no importance map. Left out: the world's own (Blender's automatic: the HDRI's size, 1024
    # for a procedural world; ~1 s of a 2-core CPU per job, see README).
    world_map: Optional[int] = Field(None, ge=0, le=8192)

    @model_validator(mode="after")
    def _consistent(self):
        if self.world_map is not None and 0 < self.world_map < 4:
            raise ValueError(f"world_map is 0 (no importance map) or 4 to 8192 pixels, not {self.world_map}")
        if self.adaptive_threshold is not None and self.adaptive_sampling is False:
            raise ValueError("adaptive_threshold applies to adaptive sampling, which adaptive_sampling: false turns "
                             "off; leave one of them out")
        return self


class Cycles(CyclesTier):
    """A sensor's Cycles speed settings at full quality, and the preview tier's own (those left out in
    ``preview`` are the full tier's)."""

    denoiser: Optional[Literal["openimagedenoise", "optix"]] = None  # left out: openimagedenoise
    denoise_quality: Optional[Literal["high", "balanced", "fast"]] = None  # OpenImageDenoise's (left out: high)
    preview: Optional[CyclesTier] = None

    def tier(self, preview: bool) -> dict:
        """The settings set for a tier: {field: value}, the preview tier's over the full tier's."""
        own = self.model_dump(exclude_none=True, exclude={"preview"})
        if preview and self.preview is not None:
            own.update(self.preview.model_dump(exclude_none=True))
            if own.get("adaptive_sampling") is False:
                own.pop("adaptive_threshold", None)  # the preview turns off what the full tier tuned
        return own


class Camera(Component):
    """A camera. Lens: pinhole, or OpenCV's Brown-Conrady (k1, k2, k3, p1, p2) or fisheye (Kannala-Brandt
    k1..k4) distortion; the image and every label follow it. A camera with ``mount`` is fixed to another
    sensor (a rig) at ``mount_offset`` (metres) and ``mount_rotation`` (degrees, XYZ) in that sensor's
    OpenCV frame (x right, y down, z forward), and moves with it. ``stereo_baseline`` makes this sensor
    the left view of a rectified pair; the right view is the sensor ``<name>_right``, offset along x."""

    kind: Literal["camera"]
    resolution: tuple[Annotated[int, Field(ge=4, le=16384)], Annotated[int, Field(ge=4, le=16384)]] = (640, 480)
    focal_length: Optional[V(MM)] = None
    fov: Optional[V(Domain("float", gt=0, le=179, unit="deg"))] = None  # horizontal field of view
    sensor_width: float = Field(36.0, gt=0, json_schema_extra=unit("mm"))
    principal_point: tuple[float, float] = (0.0, 0.0)  # offset from the image centre in pixels, x right, y down
    lens_model: Literal[LENS_MODELS] = "pinhole"  # type: ignore[valid-type]
    k1: V(REAL) = 0.0
    k2: V(REAL) = 0.0
    k3: V(REAL) = 0.0
    k4: V(REAL) = 0.0
    p1: V(REAL) = 0.0
    p2: V(REAL) = 0.0
    fstop: Optional[V(POSITIVE)] = None  # depth of field (aperture f-number); none: everything sharp
    focus_distance: Optional[V(DISTANCE)] = None
    focus_on: Optional[str] = None  # a generator whose first object is in focus
    shutter: float = Field(0.0, ge=0, le=1)  # motion blur: open time in frames (0: none)
    mount: Optional[str] = None
    mount_offset: V(VEC3) = 0.0
    mount_rotation: V(ROTATION3) = 0.0
    stereo_baseline: Optional[float] = Field(None, gt=0, le=100, json_schema_extra=unit("m"))
    samples: int = Field(32, ge=1, le=65536)
    denoise: bool = True  # OpenImageDenoise at full quality (never at the preview tier)
    cycles: Optional[Cycles] = None  # speed settings (left out: the scene's own; see Cycles)
    view_transform: V(Domain("text", choices=VIEW_TRANSFORMS)) = "AgX"
    look: V(Domain("text", choices=LOOKS)) = "None"  # Punchy and Greyscale are AgX's only
    exposure: V(Domain("float", ge=-10, le=10)) = 0.0  # stops
    gamma: V(Domain("float", gt=0, le=5)) = 1.0
    clip: tuple[float, float] = Field((0.01, 100.0), json_schema_extra=unit("m"))
    outputs: list[Literal[OUTPUTS + EXTRA_OUTPUTS]] = list(OUTPUTS)  # type: ignore[valid-type]

    def resolution_for(self, preview: bool, preview_scale: float) -> tuple[int, int]:
        """The rendered (width, height): the preview tier scales it down (at least 4 px)."""
        w, h = self.resolution
        if preview:
            w, h = max(4, round(w * preview_scale)), max(4, round(h * preview_scale))
        return int(w), int(h)

    @model_validator(mode="after")
    def _lens(self):
        if self.focal_length is not None and self.fov is not None:
            raise ValueError("give focal_length or fov, not both")
        if not 0 < self.clip[0] < self.clip[1]:
            raise ValueError(f"clip must be [near, far] with 0 < near < far, got {list(self.clip)}")
        used = COEFFICIENTS[self.lens_model]
        for name in ("k1", "k2", "k3", "k4", "p1", "p2"):
            value = getattr(self, name)
            if name not in used and not (isinstance(value, value_specs.Literal) and value.value == 0):
                raise ValueError(f"{name}: a {self.lens_model} lens has no {name} (its coefficients: "
                                 f"{', '.join(used) or 'none'}); leave it out or choose another lens_model")
        if self.focus_distance is not None and self.focus_on is not None:
            raise ValueError("give focus_distance or focus_on, not both")
        if (self.focus_distance is not None or self.focus_on is not None) and self.fstop is None:
            raise ValueError("focus_distance/focus_on need fstop (the aperture) for depth of field")
        if self.stereo_baseline is not None and self.lens_model != "pinhole":
            raise ValueError("stereo_baseline makes a rectified pair: use lens_model pinhole")
        if "disparity" in self.outputs and self.stereo_baseline is None:
            raise ValueError("outputs: disparity needs stereo_baseline (a stereo pair)")
        if self.mount is not None and self.mount == self.name:
            raise ValueError("mount: a sensor cannot be mounted on itself")
        chosen = [k for k in ("denoiser", "denoise_quality") if self.cycles and getattr(self.cycles, k) is not None]
        if chosen and not self.denoise:
            raise ValueError(f"cycles.{chosen[0]} chooses how to denoise, but denoise is false: set denoise: true or "
                             f"leave cycles.{chosen[0]} out")
        return self

    def views(self) -> list[str]:
        """The images this sensor makes per frame: its own, and ``<name>_right`` for a stereo pair."""
        return [self.name, f"{self.name}_right"] if self.stereo_baseline else [self.name]


Sensor = Annotated[Union[Camera], Field(discriminator="kind")]
