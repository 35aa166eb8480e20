"""The recipe's components: generators (what appears), modifiers (how it looks), randomizers (where
things go) and sensors (what is captured). Each is a pydantic model told apart by ``kind``.

A field typed ``V(domain)`` holds a :mod:`values` spec (literal, distribution or ``${parameter}``);
the engine draws it through the component's own random stream.
"""
from __future__ import annotations

from typing import Annotated, Any, Iterator, Literal, Optional, Union, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

from .values import Domain, ValueSpec, parse_value


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True,
                              validate_assignment=False)


def V(domain: Domain):  # noqa: N802 - reads as a type in field declarations
    """A field holding a value spec checked against ``domain``."""
    return Annotated[Any, BeforeValidator(lambda data: parse_value(data, domain)),
                     PlainSerializer(lambda spec: spec.to_data(), return_type=Any), domain]


FILE_FIELDS = ("source", "library", "hdri")  # component fields that name files or folders
RECIPE_FILE_FIELDS = (("scene", "base"), ("output", "class_map"))  # and the recipe's own

# Domains used by several fields.
COUNT = Domain("int", ge=0, le=10000)
POSITIVE = Domain("float", gt=0)
NONNEG = Domain("float", ge=0)
UNIT = Domain("float", ge=0, le=1)
ANGLE = Domain("float")  # degrees
ELEVATION = Domain("float", ge=-90, le=90)
REAL = Domain("float")
VEC3 = Domain("vector", size=3)
SIZE3 = Domain("vector", size=3, gt=0)
COLOR = Domain("vector", size=3, ge=0, le=1)
PROBABILITY = UNIT
TEXT = Domain("text")
LIGHT_TYPE = Domain("text", choices=("POINT", "SUN", "SPOT", "AREA"))
KELVIN = Domain("float", ge=1000, le=40000)

Targets = Annotated[list[str], Field(min_length=1)]
Point = Union[str, tuple[float, float, float]]  # a generator name or a point [x, y, z]


class Component(StrictModel):
    name: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9_.-]+$")

    def generator_refs(self) -> dict[str, list[str]]:
        """Fields that name generators: {field: [names]}."""
        refs: dict[str, list[str]] = {}
        for field in ("targets", "into", "surface", "look_at"):
            value = getattr(self, field, None)
            if isinstance(value, str):
                refs[field] = [value]
            elif field == "targets" and value:
                refs[field] = list(value)
        return refs

    def file_refs(self) -> dict[str, str]:
        """Fields that name files or folders (relative to the recipe): {field: path}."""
        return {f: getattr(self, f) for f in FILE_FIELDS if getattr(self, f, None)}


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
    shape: Literal["cube", "sphere", "cylinder", "cone", "torus", "plane", "monkey"]
    size: V(SIZE3) = 0.2  # bounding-box dimensions in metres
    color: V(COLOR) = [0.8, 0.8, 0.8]
    location: V(VEC3) = 0.0


class AssetGenerator(GeneratorBase):
    kind: Literal["asset"]
    source: str  # .blend, .obj, .ply, .stl, .glb, .gltf
    object: Optional[str] = None  # object or collection name inside a .blend
    location: V(VEC3) = 0.0


class AssetDirGenerator(GeneratorBase):
    kind: Literal["asset_dir"]
    source: str  # a folder of assets; one is picked per instance
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


Generator = Annotated[Union[PrimitiveGenerator, AssetGenerator, AssetDirGenerator, SceneGenerator],
                      Field(discriminator="kind")]


# -- modifiers ----------------------------------------------------------------------------------------
class ColorVariation(Component):
    """Sets each target's base colour from HSV draws (a field left out keeps the asset's own)."""

    kind: Literal["color_variation"]
    targets: Targets
    hue: Optional[V(UNIT)] = None
    saturation: Optional[V(UNIT)] = None
    value: Optional[V(UNIT)] = None


class MaterialSwap(Component):
    kind: Literal["material_swap"]
    targets: Targets
    material: V(TEXT)  # a material name, usually {choice: [...]}
    library: Optional[str] = None  # a .blend holding the materials


class ScaleJitter(Component):
    kind: Literal["scale_jitter"]
    targets: Targets
    factor: V(POSITIVE) = {"uniform": [0.8, 1.2]}


class RandomHide(Component):
    kind: Literal["random_hide"]
    targets: Targets
    probability: V(PROBABILITY) = 0.2


Modifier = Annotated[Union[ColorVariation, MaterialSwap, ScaleJitter, RandomHide], Field(discriminator="kind")]


# -- randomizers --------------------------------------------------------------------------------------
class PoseInVolume(Component):
    kind: Literal["pose_in_volume"]
    targets: Targets
    position: V(VEC3) = {"uniform": [[-0.5, -0.5, 0.0], [0.5, 0.5, 1.0]]}
    rotation: Literal["uniform", "yaw", "none"] = "uniform"  # uniform = uniform over SO(3)


class ScatterOnSurface(Component):
    """Places targets on the top of ``surface`` (or the ground plane z=0) without overlaps."""

    kind: Literal["scatter_on_surface"]
    targets: Targets
    surface: Optional[str] = None
    area: V(Domain("vector", size=3, ge=0)) = [1.0, 1.0, 0.0]  # x, y extent used when no surface is named
    gap: V(NONNEG) = 0.01
    yaw: bool = True
    max_tries: int = Field(200, ge=1)


class PhysicsDrop(Component):
    """Drops targets from above onto a floor or into a container; the result is frozen (frames=1) or
    becomes the motion of a sequence (frames>1)."""

    kind: Literal["physics_drop"]
    targets: Targets
    into: Optional[str] = None  # a generator whose objects become passive colliders
    floor: Optional[float] = 0.0  # height of an invisible ground collider; null for none
    height: V(NONNEG) = {"uniform": [0.3, 0.8]}
    spread: V(NONNEG) = 0.15
    seconds: float = Field(2.0, gt=0, le=60)


class CameraOrbit(Component):
    kind: Literal["camera_orbit"]
    sensor: Optional[str] = None  # which camera; all when omitted
    radius: V(POSITIVE) = 2.0
    height: V(REAL) = 1.0
    azimuth: V(ANGLE) = {"uniform": [0, 360]}
    speed: V(REAL) = 0.0  # degrees per frame for sequences
    look_at: Point = (0.0, 0.0, 0.0)


class OnShell(Component):
    """Placement on a sphere around ``look_at``: distance, elevation and azimuth in degrees."""

    radius: V(POSITIVE) = {"uniform": [1.5, 3.0]}
    elevation: V(ELEVATION) = {"uniform": [15, 70]}
    azimuth: V(ANGLE) = {"uniform": [0, 360]}
    look_at: Point = (0.0, 0.0, 0.0)


class CameraShell(OnShell):
    kind: Literal["camera_shell"]
    sensor: Optional[str] = None


class Lights(OnShell):
    kind: Literal["lights"]
    count: V(COUNT) = 1
    type: V(LIGHT_TYPE) = "POINT"
    energy: V(NONNEG) = 500.0  # W (W/m2 for SUN)
    temperature: V(KELVIN) = 6500.0
    radius: V(POSITIVE) = {"uniform": [2.0, 4.0]}
    elevation: V(ELEVATION) = {"uniform": [20, 80]}


class World(Component):
    """The background: one of colour, vertical gradient or HDRI image."""

    kind: Literal["world"]
    color: Optional[V(COLOR)] = None
    gradient: Optional[tuple[V(COLOR), V(COLOR)]] = None  # [bottom, top]
    hdri: Optional[str] = None
    strength: V(NONNEG) = 1.0
    rotation: V(ANGLE) = 0.0  # HDRI rotation about z, degrees

    @model_validator(mode="after")
    def _one_background(self):
        given = [k for k in ("color", "gradient", "hdri") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"choose one of color, gradient, hdri (got {', '.join(given)})")
        if not given:
            raise ValueError("needs one of color, gradient, hdri")
        return self


Randomizer = Annotated[Union[PoseInVolume, ScatterOnSurface, PhysicsDrop, CameraOrbit, CameraShell, Lights, World],
                       Field(discriminator="kind")]


# -- sensors ------------------------------------------------------------------------------------------
# Image outputs written per frame. The labels (boxes2d, boxes3d, pose6d, keypoints) are always complete in the
# annotation files; naming them here is allowed, for recipes that list what they use.
OUTPUTS = ("rgb", "depth", "normals", "instance_mask", "semantic_mask", "boxes2d", "boxes3d", "pose6d")


class Camera(Component):
    kind: Literal["camera"]
    resolution: tuple[Annotated[int, Field(ge=4, le=16384)], Annotated[int, Field(ge=4, le=16384)]] = (640, 480)
    focal_length: Optional[V(POSITIVE)] = None  # mm
    fov: Optional[V(Domain("float", gt=0, le=179))] = None  # horizontal field of view, degrees
    sensor_width: float = Field(36.0, gt=0)  # mm
    samples: int = Field(32, ge=1, le=65536)
    denoise: bool = False
    clip: tuple[float, float] = (0.01, 100.0)
    outputs: list[Literal[OUTPUTS]] = list(OUTPUTS)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _lens(self):
        if self.focal_length is not None and self.fov is not None:
            raise ValueError("give focal_length or fov, not both")
        if not 0 < self.clip[0] < self.clip[1]:
            raise ValueError(f"clip must be [near, far] with 0 < near < far, got {list(self.clip)}")
        return self


Sensor = Annotated[Union[Camera], Field(discriminator="kind")]
