"""A dataset folder's identity: what every frame in it shares, so that nothing is mixed silently.

    identity:
      recipe_hash: 3f2a...          # the normalised recipe
      tier: full                    # or preview (fewer samples, smaller images, one frame)
      resolutions: {cam: [640, 480]}
      seed: 0                       # a batch of jobs that share the parameter values below,
      params: {num_toys: 12}        #   job i seeded from (seed, i): more jobs extend the same dataset
      job_list: {count: 100, sha256: ...}   # or: jobs each with their own values (the batch API),
                                            #   listed in job_list.jsonl

It is written into ``dataset.yaml`` when the dataset is created; a later render into the folder must
have the same identity (then it resumes), or is refused with what differs.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

JOB_LIST_FILE = "job_list.jsonl"


def batch_identity(recipe, *, preview: bool, seed: int | None = None, params: dict | None = None,
                   jobs: list[tuple[dict, int]] | None = None) -> dict:
    """The identity of a batch: ``seed`` and ``params`` shared by every job, or ``jobs`` as (params, seed)
    of each job."""
    identity: dict[str, Any] = {
        "recipe_hash": recipe.hash(), "tier": "preview" if preview else "full",
        "resolutions": {s.name: list(s.resolution_for(preview, recipe.output.preview.scale)) for s in recipe.sensors}}
    if jobs:
        identity["job_list"] = {"count": len(jobs), "sha256": job_list_digest(jobs)}
    else:
        identity.update(seed=int(seed or 0), params=dict(params or {}))
    return identity


def job_list_lines(jobs: list[tuple[dict, int]]) -> list[str]:
    return [json.dumps({"id": i, "params": params, "seed": seed}, sort_keys=True) for i, (params, seed) in
            enumerate(jobs)]


def job_list_digest(jobs: list[tuple[dict, int]]) -> str:
    return hashlib.sha256("\n".join(job_list_lines(jobs)).encode()).hexdigest()


def legacy_identity(info: dict) -> dict | None:
    """The identity of a dataset written before identities were recorded, from what it did record (its
    recipe hash and batch settings); None when that is not enough to tell."""
    batch = info.get("batch")
    if not info.get("recipe_hash") or not isinstance(batch, dict):
        return None
    return {"recipe_hash": info["recipe_hash"], "tier": "preview" if batch.get("preview") else "full",
            "seed": batch.get("seed"), "params": batch.get("params") or {}}


def differences(there: dict, here: dict) -> list[str]:
    """What differs between the identity in a folder and the one arriving, in words."""
    out, keys = [], set(there) | set(here)
    for key in [k for k in _ORDER if k in keys] + sorted(keys - set(_ORDER)):
        old, new = there.get(key), here.get(key)
        if old == new:
            continue
        if key == "params" and isinstance(old, dict) and isinstance(new, dict):
            out += [f"parameter {name} {_show(old.get(name))} there, {_show(new.get(name))} now"
                    for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name)]
        elif key == "resolutions" and isinstance(old, dict) and isinstance(new, dict):
            out += [f"sensor {name} {_size(old.get(name))} there, {_size(new.get(name))} now"
                    for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name)]
        elif key == "job_list" and old and new:
            out.append(f"another job list ({old.get('count')} jobs there, {new.get('count')} now)")
        elif key == "recipe_hash":
            out.append(f"another recipe (hash {_show(old)} there, {_show(new)} now)")
        else:
            out.append(f"{_NAMES.get(key, key)} {_show(old)} there, {_show(new)} now")
    return out


_ORDER = ["recipe_hash", "tier", "resolutions", "seed", "params", "job_list"]
_NAMES = {"job_list": "job list"}


def _show(value) -> str:
    if value is None:
        return "unset"
    if isinstance(value, dict) and "count" in value:
        return f"of {value['count']} jobs"
    return str(value)


def _size(value) -> str:
    return f"{value[0]}x{value[1]}" if isinstance(value, list) and len(value) == 2 else "absent"
