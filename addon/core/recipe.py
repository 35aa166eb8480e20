"""The recipe: what a dataset is made of. Pydantic models, YAML in and out, strict validation.

Errors name the exact field path and what to do, one per line, e.g.
``randomizers[2].radius.uniform[1]: must be >= 0``. Structural checks come from pydantic; the checks
between fields (names, targets, ``${parameter}`` references, asset files) from :func:`check_recipe`.
Relative paths in a recipe are relative to the recipe file's folder.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, Field, PrivateAttr, ValidationError, field_validator, model_validator

from . import components as c
from .components import Generator, Modifier, Randomizer, Sensor, StrictModel
from .safe_yaml import MAX_NODES, safe_load
from .values import (BUILTIN, GLOB_CHARS, Choice, FieldError, ParamRef, ValueSpec, check_param_ref, expand_entry,
                     file_options)

RECIPE_VERSION = 1


class RecipeError(Exception):
    """A recipe is invalid. ``problems`` is a list of (field path, message)."""

    def __init__(self, problems: list[tuple[str, str]], source: str | None = None):
        self.problems = problems
        self.source = source
        head = f"{source}: " if source else ""
        lines = [f"{path}: {msg}" if path else msg for path, msg in problems]
        super().__init__(head + ("invalid recipe\n  " if len(lines) > 1 else "") + "\n  ".join(lines))


class Parameter(StrictModel):
    """A knob a job may set. ``parameter_info`` is made from these."""

    type: Literal["int", "float", "choice", "bool"]
    default: Any = None
    min: Optional[float] = None
    max: Optional[float] = None
    choices: Optional[list[Any]] = None
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self):
        if self.type == "choice":
            if not self.choices:
                raise ValueError("a choice parameter needs choices: [...]")
            if self.default is None:
                self.default = self.choices[0]
        elif self.choices is not None:
            raise ValueError(f"choices only apply to type: choice, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        if self.default is None:
            raise ValueError("needs a default")
        problem = self.check(self.default)
        if problem:
            raise ValueError(f"default {problem}")
        return self

    def check(self, value: Any) -> str | None:
        """Why ``value`` is not valid for this parameter, or None."""
        if self.type == "bool":
            return None if isinstance(value, bool) else f"{value!r} must be true or false"
        if self.type == "choice":
            return None if value in self.choices else f"{value!r} is not one of {self.choices}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{value!r} must be a number"
        if self.type == "int" and not float(value).is_integer():
            return f"{value!r} must be a whole number"
        if self.min is not None and value < self.min:
            return f"{value!r} is below min {self.min:g}"
        if self.max is not None and value > self.max:
            return f"{value!r} is above max {self.max:g}"
        return None

    def info(self) -> dict:
        options = {k: v for k, v in (("min", self.min), ("max", self.max), ("choices", self.choices)) if v is not None}
        return {"type": self.type, "default": self.default, "options": options, "description": self.description}


class Constraint(StrictModel):
    """A rule between parameters a job must keep, e.g. ``{left: min_toys, op: "<=", right: max_toys}``.
    ``right`` is another parameter's name or a number. Data, not code: nothing is evaluated."""

    left: str
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    right: Union[str, float]

    def holds(self, values: dict) -> bool:
        a = values[self.left]
        b = values[self.right] if isinstance(self.right, str) else self.right
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b, "!=": a != b}[self.op]

    def describe(self) -> str:
        return f"{self.left} {self.op} {self.right}"


class SceneSpec(StrictModel):
    base: Optional[str] = None  # a .blend to start from; its labelled objects join the scene


class FarmSpec(StrictModel):
    """How the farm treats this recipe's jobs."""

    hang_after: float = Field(0.0, ge=0, le=7 * 86400)  # seconds without a finished frame (0: the coordinator's)


class PreviewSpec(StrictModel):
    """The preview quality tier: one frame, fewer samples, smaller images, labels still written."""

    scale: float = Field(0.5, gt=0, le=1)
    samples: int = Field(4, ge=1)


class FilterSpec(StrictModel):
    """Which objects the exports keep (the native dataset always holds every labelled object)."""

    min_visibility: float = Field(0.0, ge=0, le=1)
    min_pixels: int = Field(1, ge=1)
    drop_truncated: bool = False
    ignore_classes: list[str] = []


class OutputSpec(StrictModel):
    formats: list[str] = ["native"]  # native plus any of the exporters (see `synthfarm convert --help`)
    class_map: Optional[str] = None  # a class map YAML (relative to the recipe)
    filters: FilterSpec = FilterSpec()
    val_fraction: float = Field(0.2, ge=0, le=1)  # share of frames in the validation split (COCO, YOLO, VOC)
    test_fraction: float = Field(0.0, ge=0, le=1)  # share in a test split (none by default)

    @model_validator(mode="after")
    def _splits(self):
        if self.val_fraction + self.test_fraction > 1:
            raise ValueError(f"val_fraction + test_fraction must be at most 1, got {self.val_fraction} + "
                             f"{self.test_fraction}")
        return self
    preview: PreviewSpec = PreviewSpec()

    @field_validator("formats")
    @classmethod
    def _known_formats(cls, value):
        from .dataset.convert import FORMATS

        for i, name in enumerate(value):
            if name not in FORMATS:
                raise ValueError(f"formats[{i}]: unknown format {name!r}; choose from {', '.join(FORMATS)}")
        return value


class Recipe(StrictModel):
    version: Literal[1] = RECIPE_VERSION
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    parameters: dict[str, Parameter] = {}
    constraints: list[Constraint] = []
    scene: SceneSpec = SceneSpec()
    generators: list[Generator] = Field(min_length=1)
    modifiers: list[Modifier] = []
    randomizers: list[Randomizer] = []
    sensors: list[Sensor] = Field(min_length=1)
    output: OutputSpec = OutputSpec()
    frames: int = Field(1, ge=1, le=10000)
    # the folder its relative paths were checked against (set by recipe_from_data; not part of the recipe or
    # its hash): a Recipe handed to the engine resolves its files where they were found
    _base_dir: Path | None = PrivateAttr(default=None)

    @property
    def base_dir(self) -> Path | None:
        return self._base_dir
    frame_rate: float = Field(24.0, gt=0, le=1000)  # frames per second of a sequence (physics, motion, video)
    farm: FarmSpec = FarmSpec()

    @field_validator("parameters")
    @classmethod
    def _parameter_names(cls, value):
        for name in value:
            if not name.isidentifier():
                raise ValueError(f"parameter name {name!r} must be a plain identifier (letters, digits, _)")
            if name == "seed":
                raise ValueError("'seed' is reserved for a job's seed; name the parameter otherwise")
        return value

    @model_validator(mode="after")
    def _default_names(self):
        """Unnamed modifiers/randomizers/sensors are named after their kind (kind, kind_2, ...).
        A component's random stream is keyed by its name, so adding one never changes the others' draws."""
        for section in (self.modifiers, self.randomizers, self.sensors):
            self._default_names_of(section)
        return self

    @staticmethod
    def _default_names_of(section: list) -> None:
        taken = {comp.name for comp in section if comp.name}
        for comp in section:
            if comp.name:
                continue
            name, n = comp.kind, 1
            while name in taken:
                n += 1
                name = f"{comp.kind}_{n}"
            comp.name = name
            taken.add(name)

    # -- convenience ---------------------------------------------------------------------------------
    @property
    def parameter_info(self) -> dict[str, dict]:
        return {name: p.info() for name, p in self.parameters.items()}

    def views(self) -> list[tuple[str, object]]:
        """Every image a frame makes: (view name, its sensor); a stereo sensor makes two."""
        return [(view, sensor) for sensor in self.sensors for view in sensor.views()]

    def generator(self, name: str):
        return next(g for g in self.generators if g.name == name)

    def to_data(self) -> dict:
        """Plain data: fields left out stay out, but an explicit null whose default is not null (``floor:
        null``, no ground) is kept, so that the data reads back as the same recipe."""
        return _without_unset_nulls(self, self.model_dump(mode="json", by_alias=True))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_data(), sort_keys=False, allow_unicode=True)

    def hash(self) -> str:
        """Content hash of the normalised recipe (formatting and comments do not change it)."""
        import json

        canonical = json.dumps(self.to_data(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _without_unset_nulls(model, data):
    if isinstance(model, (list, tuple)) and isinstance(data, list):
        return [_without_unset_nulls(m, d) for m, d in zip(model, data)]
    if isinstance(model, dict) and isinstance(data, dict):
        return {k: _without_unset_nulls(model[k], v) for k, v in data.items()}
    if not isinstance(model, BaseModel) or not isinstance(data, dict):
        return data
    out = {}
    for name, info in type(model).model_fields.items():
        key = info.alias or name
        value = getattr(model, name)
        if value is None and info.get_default() is None:
            continue
        out[key] = _without_unset_nulls(value, data[key])
    return out


# -- loading and the checks between fields --------------------------------------------------------------
def _format_loc(loc: tuple) -> str:
    out = ""
    union_tag_next = False
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
            union_tag_next = i >= 1 and loc[i - 1] in ("generators", "modifiers", "randomizers", "sensors")
            continue
        if union_tag_next:  # pydantic puts the discriminator value in the path: drop it
            union_tag_next = False
            continue
        out += f".{part}" if out else str(part)
    return out


def _pydantic_problems(err: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for e in err.errors():
        path = _format_loc(e["loc"])
        cause = (e.get("ctx") or {}).get("error")
        if isinstance(cause, FieldError):
            if cause.subpath:
                path = f"{path}.{cause.subpath}" if not cause.subpath.startswith("[") else path + cause.subpath
            msg = cause.message
        elif e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see `synthfarm validate --help` for the recipe format)"
        elif e["type"] == "union_tag_invalid":
            msg = f"unknown kind {e['input'].get('kind')!r}; expected one of {e['ctx']['expected_tags']}"
        elif e["type"] == "union_tag_not_found":
            msg = "needs a kind: " + e["ctx"]["discriminator"].strip("'")
        else:
            msg = e["msg"].removeprefix("Value error, ")
        problems.append((path, msg))
    return problems


def check_recipe(recipe: Recipe, base_dir: Path | None, *, check_files: bool = True,
                 root: Path | None = None, unchecked: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """The checks between fields: unique names, targets, parameter references, files on disk.
    With ``root``, no file may lie outside that folder (a farm job's inputs). ``unchecked``: parameters whose
    own problems are reported elsewhere (references to them are not checked)."""
    problems: list[tuple[str, str]] = []
    declared = set(recipe.parameters) | unchecked
    for i, rule in enumerate(recipe.constraints):
        for side in ("left", "right"):
            name = getattr(rule, side) if rule is not None else None
            if isinstance(name, str) and name not in declared:
                problems.append((f"constraints[{i}].{side}", f"no parameter {name!r}; declared: {sorted(declared)}"))
    if not problems and not unchecked and recipe.constraints and None not in recipe.constraints:
        defaults = {n: p.default for n, p in recipe.parameters.items()}
        for i, rule in enumerate(recipe.constraints):
            if not rule.holds(defaults):
                problems.append((f"constraints[{i}]", f"the defaults break {rule.describe()}"))
    problems += _sensor_problems(recipe)
    generator_names = [g.name for g in recipe.generators]
    for section in ("generators", "modifiers", "randomizers", "sensors"):
        seen: set[str] = set()
        for i, comp in enumerate(getattr(recipe, section)):
            if comp.name is not None and comp.name in seen:
                problems.append((f"{section}[{i}].name", f"{comp.name!r} is used twice; names must be unique"))
            seen.add(comp.name)
    for section in ("generators", "modifiers", "randomizers", "sensors"):
        for i, comp in enumerate(getattr(recipe, section)):
            where = f"{section}[{i}]"
            for field, names in comp.generator_refs().items():
                for j, name in enumerate(names):
                    if name not in generator_names:
                        path = f"{where}.{field}" + (f"[{j}]" if field in c.LIST_REFS else "")
                        problems.append((path, f"no generator named {name!r}; generators are {generator_names}"))
            for field, value in c.value_fields(comp):
                if isinstance(value, ParamRef) and value.name not in unchecked:
                    param = recipe.parameters.get(value.name)
                    if param is None:
                        problems.append((f"{where}.{field}", f"unknown parameter ${{{value.name}}}; declare it "
                                         f"under parameters: (declared: {sorted(declared)})"))
                        continue
                    why = check_param_ref(value, c.domain_of(comp, field), param)
                    if why:
                        problems.append((f"{where}.{field}", why))
            for field, spec in comp.file_refs().items():
                problems += _file_set_problems(f"{where}.{field}", spec, c.FILE_DOMAINS[field], base_dir,
                                               check_files, root)
    for where, rel in (("scene.base", recipe.scene.base), ("output.class_map", recipe.output.class_map)):
        if rel and root is not None:
            problems += _file_problems(where, rel, base_dir, False, root)
    if not check_files:
        return problems
    if recipe.output.class_map:
        from .dataset.classmap import ClassMapError, load_class_map

        try:
            load_class_map(resolve_path(recipe.output.class_map, base_dir))
        except ClassMapError as err:
            problems.append(("output.class_map", str(err)))
    if recipe.scene.base and not resolve_path(recipe.scene.base, base_dir).exists():
        problems.append(("scene.base", f"{recipe.scene.base!r} does not exist (looked for "
                         f"{resolve_path(recipe.scene.base, base_dir)})"))
    return problems


def _sensor_problems(recipe: Recipe) -> list[tuple[str, str]]:
    """Rigs: mounts name sensors and form no loop; view names are unique; randomizers move rig roots."""
    problems = []
    sensors = {s.name: s for s in recipe.sensors}
    views: dict[str, int] = {}
    for i, sensor in enumerate(recipe.sensors):
        for view in sensor.views():
            if view in views and views[view] != i:
                problems.append((f"sensors[{i}].name", f"{view!r} is also the right view of a stereo sensor; "
                                 "rename one of them"))
            views[view] = i
        if sensor.mount is not None and sensor.mount not in sensors:
            problems.append((f"sensors[{i}].mount", f"no sensor named {sensor.mount!r}; sensors are {list(sensors)}"))
            continue
        seen, at = {sensor.name}, sensor
        while at.mount is not None and at.mount in sensors:
            at = sensors[at.mount]
            if at.name in seen:
                problems.append((f"sensors[{i}].mount", f"mounts form a loop through {at.name!r}; a rig needs one "
                                 "sensor that is not mounted"))
                break
            seen.add(at.name)
    for i, rnd in enumerate(recipe.randomizers):
        name = getattr(rnd, "sensor", None)
        if name is None:
            continue
        if name not in sensors:
            problems.append((f"randomizers[{i}].sensor", f"no sensor named {name!r}; sensors are {list(sensors)}"))
        elif sensors[name].mount is not None and rnd.kind in c.CAMERA_MOVERS:
            problems.append((f"randomizers[{i}].sensor", f"{name!r} is mounted on {sensors[name].mount!r} and moves "
                             "with it; move the rig's root sensor instead"))
    return problems


def _file_problems(where: str, rel: str, base_dir: Path | None, check_files: bool, root: Path | None) -> list:
    path = resolve_path(rel, base_dir)
    if root is not None and not path.resolve().is_relative_to(Path(root).resolve()):
        return [(where, f"{rel!r} leaves the job's folder; a farm job may only use the files sent with it")]
    if check_files and not path.exists():
        return [(where, f"{rel!r} does not exist (looked for {path}); paths are relative to the recipe file")]
    return []


def _file_set_problems(where: str, spec, domain, base_dir: Path | None, check_files: bool,
                       root: Path | None) -> list:
    """A file set's entries: each must name something (with its pattern when it names nothing), and
    nothing may leave ``root``."""
    problems = []
    for k, (entry, _) in enumerate(file_options(spec)):
        at = f"{where}.choice[{k}]" if isinstance(spec, Choice) else where
        if entry.startswith(BUILTIN):
            continue
        members = expand_entry(entry, domain, base_dir) if (check_files or root is not None) else []
        if root is not None:
            problems += [p for m in members or [entry] for p in _file_problems(at, m, base_dir, False, root)][:1]
        if check_files and not members:
            looked = resolve_path(entry, base_dir)
            what = "matches" if GLOB_CHARS & set(entry) else "names"
            hint = "" if GLOB_CHARS & set(entry) or looked.exists() else " (it does not exist)"
            problems.append((at, f"{entry!r} {what} no {domain.what}{hint}: the set is empty (looked for {looked}); "
                                 "paths are relative to the recipe file"))
    return problems


def map_paths(data: dict, change) -> dict:
    """A copy of recipe data with ``change(path, field)`` applied to every file path it names: the recipe's
    own (field ``scene.base``, ``output.class_map``) and every entry of every file set (field ``source``,
    ``hdri``, ...: a key of ``FILE_DOMAINS``), also inside ``choice`` lists. Blender's own files
    (``blender:NAME``) are not paths and are left alone."""
    import copy

    def one(path, field):
        return path if not isinstance(path, str) or path.startswith(BUILTIN) else change(path, field)

    data = copy.deepcopy(data)
    for section in ("generators", "modifiers", "randomizers", "sensors"):
        for item in data.get(section, []):
            for key in c.FILE_FIELDS:
                value = item.get(key)
                if isinstance(value, dict) and isinstance(value.get("choice"), list):
                    value["choice"] = [one(v, key) for v in value["choice"]]
                elif value:
                    item[key] = one(value, key)
    for outer, inner in c.RECIPE_FILE_FIELDS:
        if (data.get(outer) or {}).get(inner):
            data[outer][inner] = one(data[outer][inner], f"{outer}.{inner}")
    return data


def rebase_paths(data: dict, from_dir: Path, to_dir: Path) -> dict:
    """Recipe data whose relative paths start at ``from_dir``, rewritten to start at ``to_dir``
    (a recipe written somewhere else keeps naming the same files)."""
    import os

    def rebase(rel: str, field: str) -> str:
        if Path(rel).expanduser().is_absolute():
            return rel
        return Path(os.path.relpath(Path(from_dir) / rel, Path(to_dir))).as_posix()

    return map_paths(data, rebase)


def resolve_path(rel: str, base_dir: Path | None) -> Path:
    path = Path(rel).expanduser()
    return path if path.is_absolute() else (base_dir or Path.cwd()) / path


def recipe_from_data(data: Any, base_dir: Path | None = None, source: str | None = None, *,
                     check_files: bool = True, root: Path | None = None) -> Recipe:
    if not isinstance(data, dict):
        raise RecipeError([("", f"a recipe is a mapping (name:, generators:, sensors:, ...), got {type(data).__name__}")],
                          source)
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as err:  # every problem at once: the checks between fields run on the valid parts
        problems = _pydantic_problems(err)
        partial, unchecked = _valid_parts(data)
        problems += [p for p in check_recipe(partial, base_dir, check_files=check_files, root=root,
                                             unchecked=unchecked) if p not in problems]
        raise RecipeError(problems, source) from None
    problems = check_recipe(recipe, base_dir, check_files=check_files, root=root)
    if problems:
        raise RecipeError(problems, source)
    recipe._base_dir = Path(base_dir).resolve() if base_dir is not None else None
    return recipe


def _valid_parts(data: dict) -> tuple[Recipe, frozenset[str]]:
    """The parts of recipe ``data`` that are valid on their own, in their places (a component that is not
    stands in by its name alone), and the names of the parameters that are not valid."""
    from pydantic import TypeAdapter

    def valid(kind, item):
        try:
            return TypeAdapter(kind).validate_python(item)
        except ValidationError:
            return None

    def listed(key):
        return data.get(key) if isinstance(data.get(key), list) else []

    raw = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
    parameters = {name: p for name, p in ((n, valid(Parameter, v)) for n, v in raw.items()) if p is not None}
    parts = {"name": data.get("name") or "", "parameters": parameters,
             "constraints": [valid(Constraint, item) for item in listed("constraints")],
             "scene": valid(SceneSpec, data.get("scene", {})) or SceneSpec(),
             "output": valid(OutputSpec, data.get("output", {})) or OutputSpec()}
    for section, kind in (("generators", Generator), ("modifiers", Modifier), ("randomizers", Randomizer),
                          ("sensors", Sensor)):
        parts[section] = [valid(kind, item) for item in listed(section)]
    recipe = Recipe.model_construct(**parts)
    for section in ("modifiers", "randomizers", "sensors"):
        recipe._default_names_of([comp for comp in getattr(recipe, section) if comp is not None])
    for section in ("generators", "modifiers", "randomizers", "sensors"):
        setattr(recipe, section, [comp if comp is not None else _Unchecked.model_construct(
            name=item.get("name") if isinstance(item, dict) else None)
            for comp, item in zip(getattr(recipe, section), listed(section))])
    return recipe, frozenset(raw) - set(parameters)


class _Unchecked(c.Component):
    """Stands in for a component that is not valid on its own (pydantic reports why): it is known by its name
    alone, so that the checks between fields neither chase it nor call references to it dangling."""

    kind: Optional[str] = None
    sensor: Optional[str] = None
    mount: Optional[str] = None

    def views(self) -> list[str]:
        return []


def parse_recipe_text(text: str, base_dir: Path | None = None, source: str | None = None, *,
                      check_files: bool = True, root: Path | None = None, max_nodes: int = MAX_NODES) -> Recipe:
    try:
        data = safe_load(text, max_nodes)  # aliases bounded: recipes come from other people
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise RecipeError([("", f"not valid YAML: {where}{getattr(err, 'problem', err)}")], source) from None
    return recipe_from_data(data, base_dir, source, check_files=check_files, root=root)


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe file. Raises RecipeError (with every problem found) or FileNotFoundError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recipe {str(path)!r} not found")
    return parse_recipe_text(path.read_text(encoding="utf-8"), path.resolve().parent, str(path))


__all__ = ["Recipe", "RecipeError", "Parameter", "load_recipe", "parse_recipe_text", "recipe_from_data",
           "resolve_path", "map_paths", "rebase_paths", "check_recipe", "ValueSpec"]
