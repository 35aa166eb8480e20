"""Jobs: a recipe, parameter values, a seed and a frame count. A batch is a list of jobs.

A job's seed derives from (batch seed, job index) unless given, so a batch is reproducible from one
number and any single job can be re-run alone from its metadata.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .recipe import Recipe
from .sampling import derive_seed


class JobError(ValueError):
    """Job parameters that do not fit the recipe; the message names the parameter and the rule."""


class JobSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int = Field(ge=0)
    params: dict[str, Any] = {}
    seed: int = Field(ge=0)
    frames: int = Field(1, ge=1)
    preview: bool = False


def job_seed(batch_seed: int, index: int) -> int:
    return derive_seed("job", batch_seed, index)


def resolve_params(recipe: Recipe, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The recipe's defaults updated with ``overrides``, every value checked. Raises JobError."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(recipe.parameters))
    if unknown:
        raise JobError(f"unknown parameter {unknown[0]!r}; the recipe declares {sorted(recipe.parameters)}")
    params = {name: p.default for name, p in recipe.parameters.items()}
    for name, value in overrides.items():
        param = recipe.parameters[name]
        if param.type == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)
        if param.type == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        problem = param.check(value)
        if problem:
            raise JobError(f"parameter {name}: {problem}")
        params[name] = value
    for rule in recipe.constraints:
        if not rule.holds(params):
            raise JobError(f"constraint {rule.describe()} does not hold: " + ", ".join(
                f"{n} = {params[n]!r}" for n in (rule.left, rule.right) if isinstance(n, str)))
    return params


def coerce_param(recipe: Recipe, name: str, text: str) -> Any:
    """Turn command-line text (``--set name=value``) into a value of the parameter's type."""
    if name not in recipe.parameters:
        raise JobError(f"unknown parameter {name!r}; the recipe declares {sorted(recipe.parameters)}")
    ptype = recipe.parameters[name].type
    try:
        if ptype == "int":
            return int(text)
        if ptype == "float":
            return float(text)
        if ptype == "bool":
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
    except ValueError:
        raise JobError(f"parameter {name}: {text!r} is not a valid {ptype}") from None
    choices = recipe.parameters[name].choices or []
    for choice in choices:  # choices may be numbers in YAML
        if str(choice) == text:
            return choice
    return text


def make_jobs(recipe: Recipe, count: int, *, seed: int = 0, preview: bool = False,
              params: dict[str, Any] | None = None, first_id: int = 0) -> list[JobSpec]:
    """``count`` jobs with ids first_id.. and seeds derived from ``seed``."""
    if count < 1:
        raise JobError(f"--jobs must be at least 1, got {count}")
    values = resolve_params(recipe, params)
    frames = 1 if preview else recipe.frames
    return [JobSpec(id=i, params=values, seed=job_seed(seed, i), frames=frames, preview=preview)
            for i in range(first_id, first_id + count)]
