"""A recipe field is a literal, a distribution, or a ``${parameter}`` reference.

Every numeric or categorical field of a recipe declares a :class:`Domain` (what it may hold: a float
>= 0, an int, a 3-vector of colours in [0, 1], one of a few words). A value written in the recipe is
parsed into a :class:`ValueSpec` and checked against that domain *before* anything renders, so a
distribution that could draw an impossible value is an error that names the exact place:
``randomizers[2].radius.uniform[1]: must be >= 0``.

Forms (YAML):
    0.5                                   a literal (vectors accept a scalar, broadcast)
    {uniform: [a, b]}                     a, b scalars or vectors (element-wise)
    {normal: [mu, sigma], clip: [lo, hi]} clip optional; draws are also clipped to the field's bounds
    {triangular: [left, mode, right]}
    {randint: [lo, hi]}                   inclusive at both ends
    {choice: [x, y, ...], weights: [...]}
    {sweep_linspace: [a, b, n]}           job i takes linspace(a, b, n)[i % n]
    {sweep_arange: [a, b, step]}          job i takes arange(a, b, step)[i % len]
    ${name}                               the job's value of parameter `name`

File fields (a :class:`Domain` of kind ``file``) take a *file set*: a path, a folder (its files of the
field's types, or for folder fields its sub-folders), a glob (``hdri/*.exr``), or ``{choice: [...],
weights: [...]}`` of those; relative to the recipe's folder. A field that accepts Blender's own HDRIs also
takes ``blender:NAME`` (``blender:*`` for all of them). :func:`file_members` lists what a set can draw.
"""
from __future__ import annotations

import fnmatch
import glob
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

PARAM_REF = re.compile(r"^\$\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}$")


class FieldError(ValueError):
    """A value does not fit its field. ``subpath`` continues the field path (e.g. ``uniform[1]``)."""

    def __init__(self, message: str, subpath: str = ""):
        super().__init__(message)
        self.message = message
        self.subpath = subpath


@dataclass(frozen=True)
class Domain:
    """What a field may hold. kind: float | int | vector | text | bool | file."""

    kind: str
    ge: float | None = None
    le: float | None = None
    gt: float | None = None
    size: int | None = None  # vector length
    choices: tuple[str, ...] | None = None  # allowed words for text
    extensions: tuple[str, ...] = ()  # file: the file types a set may draw (lower case, with the dot)
    folders: bool = False  # file: the set's members are folders (e.g. texture sets), not files
    builtin: bool = False  # file: Blender's own HDRIs (blender:NAME) are accepted
    unit: str | None = None  # what the numbers measure, for people: m, mm, deg, K, W, s (see schema.UNITS)

    @property
    def numeric(self) -> bool:
        return self.kind in ("float", "int", "vector")

    def describe(self) -> str:
        if self.kind == "text":
            return "one of " + ", ".join(self.choices) if self.choices else "a text"
        if self.kind == "file":
            return "a file set: a path, a folder, a glob or {choice: [...]}" + (
                f" of {self.what}" if self.extensions or self.folders else "")
        bounds = []
        if self.gt is not None:
            bounds.append(f"> {self.gt:g}")
        if self.ge is not None:
            bounds.append(f">= {self.ge:g}")
        if self.le is not None:
            bounds.append(f"<= {self.le:g}")
        what = {"float": "a number", "int": "a whole number", "vector": f"a list of {self.size} numbers",
                "bool": "true or false"}[self.kind]
        return what + (" " + " and ".join(bounds) if bounds else "")

    @property
    def what(self) -> str:
        """What a file set's members are, in words."""
        if self.folders:
            return "folders"
        return "files (" + ", ".join(self.extensions) + ("; or blender:NAME" if self.builtin else "") + ")"

    # -- literal checks -------------------------------------------------------------------------------
    def check_literal(self, value: Any, subpath: str = "") -> Any:
        """Return the value normalised for this domain or raise FieldError."""
        if self.kind == "file":
            if not isinstance(value, str) or not value.strip():
                raise FieldError(f"must be a path, a folder or a glob (text), got {value!r}", subpath)
            if value.startswith(BUILTIN):
                if not self.builtin:
                    raise FieldError(f"{value!r}: only HDRI fields take Blender's own images (blender:NAME)", subpath)
                if not fnmatch.filter(BLENDER_WORLDS, value[len(BUILTIN):]):
                    raise FieldError(f"{value!r} names none of Blender's HDRIs; use blender:NAME with NAME one of "
                                     f"{', '.join(BLENDER_WORLDS)} (or blender:* for all)", subpath)
            return value
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            raise FieldError(f"must be true or false, got {value!r}", subpath)
        if self.kind == "text":
            if not isinstance(value, str):
                raise FieldError(f"must be {self.describe()}, got {value!r}", subpath)
            if self.choices and value not in self.choices:
                raise FieldError(f"{value!r} is not allowed; use {self.describe()}", subpath)
            return value
        if self.kind == "vector":
            if _is_number(value):
                value = [value] * self.size
            if not isinstance(value, (list, tuple)) or len(value) != self.size:
                raise FieldError(f"must be {self.describe()} (or one number for all), got {value!r}", subpath)
            return [self._check_number(v, f"{subpath}[{i}]") for i, v in enumerate(value)]
        return self._check_number(value, subpath)

    def _check_number(self, value: Any, subpath: str) -> float | int:
        if not _is_number(value):
            raise FieldError(f"must be a number, got {value!r}", subpath)
        if self.kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise FieldError(f"must be a whole number, got {value!r}", subpath)
            value = int(value)
        else:
            value = float(value)
        if not math.isfinite(value):
            raise FieldError(f"must be finite, got {value!r}", subpath)
        if self.ge is not None and value < self.ge:
            raise FieldError(f"must be >= {self.ge:g}", subpath)
        if self.gt is not None and value <= self.gt:
            raise FieldError(f"must be > {self.gt:g}", subpath)
        if self.le is not None and value > self.le:
            raise FieldError(f"must be <= {self.le:g}", subpath)
        return value

    def clip(self, value):
        lo = self.ge if self.ge is not None else self.gt
        if lo is None and self.le is None:
            return value
        return np.clip(value, -np.inf if lo is None else lo, np.inf if self.le is None else self.le)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    """numpy scalars/arrays -> plain Python (for JSON metadata and exact YAML round trips)."""
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())  # a 0-d array gives a scalar
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# -- value specs --------------------------------------------------------------------------------------
class ValueSpec:
    """Base of every parsed value. ``sample`` draws one value for job ``job_index`` from ``rng``."""

    def sample(self, rng: np.random.Generator, job_index: int, params: dict[str, Any]) -> Any:
        raise NotImplementedError

    def to_data(self) -> Any:
        raise NotImplementedError

    @property
    def is_random(self) -> bool:
        return True

    def __eq__(self, other):
        return type(self) is type(other) and self.to_data() == other.to_data()

    def __hash__(self):
        return hash(repr(self.to_data()))

    def __repr__(self):
        return f"{type(self).__name__}({self.to_data()!r})"


class Literal(ValueSpec):
    def __init__(self, value):
        self.value = value

    def sample(self, rng, job_index, params):
        return self.value

    def to_data(self):
        return self.value

    @property
    def is_random(self):
        return False


class ParamRef(ValueSpec):
    def __init__(self, name: str):
        self.name = name

    def sample(self, rng, job_index, params):
        if self.name not in params:
            raise KeyError(f"parameter {self.name!r} has no value for this job")
        return params[self.name]

    def to_data(self):
        return "${" + self.name + "}"

    @property
    def is_random(self):
        return False


class Distribution(ValueSpec):
    key: str = ""
    args: tuple[str, ...] = ()

    def __init__(self, domain: Domain, values: list, extras: dict):
        self.domain = domain
        self.values = values
        self.extras = extras

    def to_data(self):
        return {self.key: _plain(self.values), **{k: _plain(v) for k, v in self.extras.items()}}

    def _finish(self, value):
        value = self.domain.clip(np.asarray(value, dtype=float)) if self.domain.numeric else value
        if self.domain.kind == "int":
            return int(round(float(value)))
        return _plain(value)


def _check_arity(key: str, values: Any, names: Sequence[str]) -> list:
    if not isinstance(values, (list, tuple)) or len(values) != len(names):
        raise FieldError(f"takes a list of {len(names)} values [{', '.join(names)}], got {values!r}", key)
    return list(values)


def _check_items(domain: Domain, key: str, values: list) -> list:
    return [domain.check_literal(v, f"{key}[{i}]") for i, v in enumerate(values)]


def _check_ordered(key: str, lo, hi, what: str = "lower bound"):
    if np.any(np.asarray(lo) > np.asarray(hi)):
        raise FieldError(f"{what} {lo!r} is above upper bound {hi!r}", key)


def _bounds(domain: Domain, kind: str = "float") -> Domain:
    """A scalar domain with the bounds of ``domain``."""
    return Domain(kind, ge=domain.ge, le=domain.le, gt=domain.gt)


def _need_number_field(domain: Domain, key: str):
    if domain.kind not in ("int", "float"):
        raise FieldError(f"needs a number field; this one takes {domain.describe()}", key)


def _no_int_continuous(domain: Domain, key: str):
    if domain.kind == "int":
        raise FieldError("draws fractional values but this field takes whole numbers; use randint: [lo, hi]", key)
    if not domain.numeric:
        raise FieldError(f"needs a numeric field; this one takes {domain.describe()}; use choice: [...]", key)


class Uniform(Distribution):
    key = "uniform"

    @classmethod
    def parse(cls, domain, values, extras):
        _no_int_continuous(domain, cls.key)
        lo, hi = _check_items(domain, cls.key, _check_arity(cls.key, values, ("low", "high")))
        _check_ordered(cls.key, lo, hi)
        return cls(domain, [lo, hi], {})

    def sample(self, rng, job_index, params):
        lo, hi = (np.asarray(v, dtype=float) for v in self.values)
        return self._finish(rng.uniform(lo, hi))


class Normal(Distribution):
    key = "normal"

    @classmethod
    def parse(cls, domain, values, extras):
        _no_int_continuous(domain, cls.key)
        mu, sigma = _check_arity(cls.key, values, ("mean", "sigma"))
        mu = domain.check_literal(mu, f"{cls.key}[0]")
        sigma = Domain("vector" if domain.kind == "vector" else "float", ge=0, size=domain.size).check_literal(
            sigma, f"{cls.key}[1]")
        out = {}
        if "clip" in extras:
            clip = _check_items(domain, "clip", _check_arity("clip", extras["clip"], ("low", "high")))
            _check_ordered("clip", *clip)
            out["clip"] = clip
        return cls(domain, [mu, sigma], out)

    def sample(self, rng, job_index, params):
        mu, sigma = (np.asarray(v, dtype=float) for v in self.values)
        value = rng.normal(mu, sigma)
        if "clip" in self.extras:
            lo, hi = (np.asarray(v, dtype=float) for v in self.extras["clip"])
            value = np.clip(value, lo, hi)
        return self._finish(value)


class Triangular(Distribution):
    key = "triangular"

    @classmethod
    def parse(cls, domain, values, extras):
        _no_int_continuous(domain, cls.key)
        left, mode, right = _check_items(domain, cls.key, _check_arity(cls.key, values, ("left", "mode", "right")))
        _check_ordered(cls.key, left, mode, "left")
        _check_ordered(cls.key, mode, right, "mode")
        return cls(domain, [left, mode, right], {})

    def sample(self, rng, job_index, params):
        left, mode, right = (np.asarray(v, dtype=float) for v in self.values)
        if np.all(left == right):
            return self._finish(left)
        return self._finish(rng.triangular(left, mode, np.where(right > left, right, left + 1e-12)))


class RandInt(Distribution):
    key = "randint"

    @classmethod
    def parse(cls, domain, values, extras):
        _need_number_field(domain, cls.key)
        lo, hi = _check_items(_bounds(domain, "int"), cls.key, _check_arity(cls.key, values, ("low", "high")))
        _check_ordered(cls.key, lo, hi)
        return cls(domain, [lo, hi], {})

    def sample(self, rng, job_index, params):
        lo, hi = self.values
        value = int(rng.integers(lo, hi, endpoint=True))
        return value if self.domain.kind == "int" else float(value)


class Choice(Distribution):
    key = "choice"

    @classmethod
    def parse(cls, domain, values, extras):
        if not isinstance(values, (list, tuple)) or not values:
            raise FieldError("takes a non-empty list of options", cls.key)
        options = _check_items(domain, cls.key, list(values))
        out = {}
        if "weights" in extras:
            weights = extras["weights"]
            if not isinstance(weights, (list, tuple)) or len(weights) != len(options):
                raise FieldError(f"needs one weight per option ({len(options)})", "weights")
            weights = [Domain("float", ge=0).check_literal(w, f"weights[{i}]") for i, w in enumerate(weights)]
            if sum(weights) <= 0:
                raise FieldError("must not all be zero", "weights")
            out["weights"] = weights
        return cls(domain, options, out)

    def sample(self, rng, job_index, params):
        p = None
        if "weights" in self.extras:
            w = np.asarray(self.extras["weights"], dtype=float)
            p = w / w.sum()
        return _plain(self.values[int(rng.choice(len(self.values), p=p))])


class _Sweep(Distribution):
    def sample(self, rng, job_index, params):
        points = self.points()
        value = points[job_index % len(points)]
        return int(round(value)) if self.domain.kind == "int" else float(value)

    @property
    def is_random(self):
        return False


class SweepLinspace(_Sweep):
    key = "sweep_linspace"

    @classmethod
    def parse(cls, domain, values, extras):
        _need_number_field(domain, cls.key)
        a, b, n = _check_arity(cls.key, values, ("start", "stop", "count"))
        a, b = _check_items(_bounds(domain), cls.key, [a, b])
        n = Domain("int", ge=1).check_literal(n, f"{cls.key}[2]")
        return cls(domain, [a, b, n], {})

    def points(self):
        a, b, n = self.values
        return np.linspace(a, b, int(n))


class SweepArange(_Sweep):
    key = "sweep_arange"

    @classmethod
    def parse(cls, domain, values, extras):
        _need_number_field(domain, cls.key)
        a, b, step = _check_arity(cls.key, values, ("start", "stop", "step"))
        a = _bounds(domain).check_literal(a, f"{cls.key}[0]")
        b = Domain("float").check_literal(b, f"{cls.key}[1]")
        step = Domain("float", gt=0).check_literal(step, f"{cls.key}[2]")
        if b <= a:
            raise FieldError(f"stop {b:g} must be above start {a:g}", cls.key)
        spec = cls(domain, [a, b, step], {})
        last = float(spec.points()[-1])
        _bounds(domain).check_literal(last, cls.key)
        return spec

    def points(self):
        a, b, step = self.values
        return np.arange(a, b, step)


DISTRIBUTIONS: dict[str, type[Distribution]] = {
    cls.key: cls for cls in (Uniform, Normal, Triangular, RandInt, Choice, SweepLinspace, SweepArange)}
EXTRA_KEYS = {"normal": {"clip"}, "choice": {"weights"}}


def parse_value(data: Any, domain: Domain) -> ValueSpec:
    """Parse recipe data into a ValueSpec checked against ``domain`` (raises FieldError)."""
    if isinstance(data, ValueSpec):
        data = data.to_data()
    if isinstance(data, str):
        match = PARAM_REF.match(data)
        if match and domain.kind == "file":
            raise FieldError("a file field takes a path, a folder, a glob or {choice: [...]}, not a parameter")
        if match:
            return ParamRef(match.group(1))
        if "${" in data:
            raise FieldError(f"{data!r} is not a parameter reference; write it as ${{name}}")
    if isinstance(data, dict):
        keys = [k for k in data if k in DISTRIBUTIONS]
        if len(keys) != 1:
            unknown = sorted(set(data) - set(DISTRIBUTIONS) - {"clip", "weights"})
            hint = f"unknown key {unknown[0]!r}; " if unknown else ""
            raise FieldError(f"{hint}a distribution is one of: {', '.join(DISTRIBUTIONS)}")
        key = keys[0]
        extras = {k: v for k, v in data.items() if k != key}
        stray = set(extras) - EXTRA_KEYS.get(key, set())
        if stray:
            raise FieldError(f"unknown key {sorted(stray)[0]!r} for {key}", sorted(stray)[0])
        return DISTRIBUTIONS[key].parse(domain, data[key], extras)
    return Literal(domain.check_literal(data))


def check_param_ref(ref: ParamRef, domain: Domain, parameter) -> str | None:
    """Why parameter ``parameter`` (a recipe Parameter) cannot feed a field of ``domain``, or None."""
    ptype = parameter.type
    if domain.kind == "text":
        if ptype != "choice":
            return f"parameter {ref.name!r} is {ptype}; this field takes {domain.describe()}"
        bad = [c for c in parameter.choices if domain.choices and c not in domain.choices]
        return f"parameter {ref.name!r} may be {bad[0]!r}; this field takes {domain.describe()}" if bad else None
    if domain.kind == "bool":
        return None if ptype == "bool" else f"parameter {ref.name!r} is {ptype}; this field takes true or false"
    if ptype not in ("int", "float") or (domain.kind == "int" and ptype != "int"):
        return f"parameter {ref.name!r} is {ptype}; this field takes {domain.describe()}"
    for end, value in (("min", parameter.min), ("max", parameter.max)):
        if value is None:
            if (end == "min" and (domain.ge is not None or domain.gt is not None)) or (
                    end == "max" and domain.le is not None):
                return f"parameter {ref.name!r} needs a {end} so that it stays {domain.describe()}"
            continue
        try:
            _bounds(domain).check_literal(value)
        except FieldError as err:
            return f"parameter {ref.name!r} {end} {value:g}: {err.message}"
    return None


# -- file sets ------------------------------------------------------------------------------------------
BUILTIN = "blender:"
# The world HDRIs Blender ships (datafiles/studiolights/world, the same names in 5.0 to 5.3).
BLENDER_WORLDS = ("city", "courtyard", "forest", "interior", "night", "studio", "sunrise", "sunset")
GLOB_CHARS = frozenset("*?[")


def file_options(spec: ValueSpec) -> list[tuple[str, float]]:
    """The entries of a file set as written, with their weights: a path/folder/glob, or each choice."""
    if isinstance(spec, Choice):
        weights = spec.extras.get("weights") or [1.0] * len(spec.values)
        return list(zip(spec.values, weights))
    return [(spec.to_data(), 1.0)]


def _resolve(entry: str, base_dir: Path | None) -> Path:
    path = Path(entry).expanduser()
    return path if path.is_absolute() else (base_dir or Path.cwd()) / path


def expand_entry(entry: str, domain: Domain, base_dir: Path | None) -> list[str]:
    """What one entry of a file set can draw, sorted, written as the entry is (relative stays relative):
    a file -> itself; a folder -> its files of the field's types (folder fields: its sub-folders, or the
    folder itself when it has none); a glob -> its matches; ``blender:NAME`` -> the matching names."""
    if entry.startswith(BUILTIN):
        return [BUILTIN + name for name in fnmatch.filter(BLENDER_WORLDS, entry[len(BUILTIN):])]
    path = _resolve(entry, base_dir)

    def fits(p: Path) -> bool:
        return p.is_dir() if domain.folders else (p.is_file() and p.suffix.lower() in domain.extensions)

    if GLOB_CHARS & set(entry):
        start = base_dir or Path.cwd()
        matches = sorted(Path(m) for m in glob.glob(str(path), recursive=True) if fits(Path(m)))
        if Path(entry).expanduser().is_absolute():
            return [m.as_posix() for m in matches]
        return [Path(os.path.relpath(m, start)).as_posix() for m in matches]
    if path.is_dir() and not (domain.folders and not any(p.is_dir() for p in path.iterdir())):
        return [(Path(entry) / p.name).as_posix() for p in sorted(path.iterdir()) if fits(p)]
    return [entry] if fits(path) else []


def file_members(spec: ValueSpec, domain: Domain, base_dir: Path | None) -> list[str]:
    """Every member a file set can draw (the union over its entries, in order, without repeats)."""
    out: list[str] = []
    for entry, _ in file_options(spec):
        out += [m for m in expand_entry(entry, domain, base_dir) if m not in out]
    return out


def draw_file(spec: ValueSpec, domain: Domain, rng: np.random.Generator, base_dir: Path | None) -> str:
    """One member of a file set: an entry by its weight, then one of its members uniformly."""
    entry = spec.sample(rng, 0, {})
    members = expand_entry(entry, domain, base_dir)
    if not members:
        raise FileNotFoundError(f"{entry!r} names no {domain.what} (looked under {base_dir or Path.cwd()})")
    return members[int(rng.integers(len(members)))] if len(members) > 1 else members[0]


def resolve_member(member: str, base_dir: Path | None) -> Path:
    """The path of a drawn member (not for ``blender:`` names, which the engine resolves)."""
    if member.startswith(BUILTIN):
        raise ValueError(f"{member!r} is one of Blender's own files; the engine resolves it")
    return _resolve(member, base_dir)
