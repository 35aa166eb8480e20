"""Seeded sampling: one random stream per component, and a log of every value drawn.

A component's stream derives from (job seed, stream key) only, where the key is ``section/name``
(e.g. ``randomizers/camera_orbit``). Adding, removing or reordering other components therefore never
changes what a component draws. Every draw is logged under its key so the frame metadata says exactly
what was sampled, and a job re-run from its seed reproduces it.
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from .values import Domain, ValueSpec, _plain, draw_file


def _key_int(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "little")


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed from integers and strings (stable across platforms and Python versions)."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little") >> 1


class Stream:
    """The random stream of one component. ``draw`` samples a recipe value and logs it."""

    def __init__(self, sampler: "Sampler", key: str):
        self.key = key
        self.rng = np.random.default_rng([sampler.seed, _key_int(key)])
        self._sampler = sampler
        self.log: dict[str, Any] = sampler.log.setdefault(key, {})

    def draw(self, field: str, spec: ValueSpec, item: str | None = None) -> Any:
        """Draw ``spec`` (the value of ``field``); ``item`` names what it is for (e.g. an object)."""
        value = _plain(spec.sample(self.rng, self._sampler.job_index, self._sampler.params))
        self.record(field, value, item)
        return value

    def draw_file(self, field: str, spec: ValueSpec, domain: Domain, base_dir, item: str | None = None) -> str:
        """Draw one member of a file set (as written: relative to the recipe, or ``blender:NAME``) and log it."""
        return self.record(field, draw_file(spec, domain, self.rng, base_dir), item)

    def record(self, field: str, value: Any, item: str | None = None) -> Any:
        """Log a value drawn directly from ``self.rng`` (positions, rotations, picks)."""
        value = _plain(value)
        if item is None:
            self.log[field] = value
        else:
            self.log.setdefault(field, {})[item] = value
        return value


class Sampler:
    """All streams of one job."""

    def __init__(self, seed: int, job_index: int = 0, params: dict[str, Any] | None = None):
        self.seed = int(seed)
        self.job_index = int(job_index)
        self.params = dict(params or {})
        self.log: dict[str, dict[str, Any]] = {}
        self._streams: dict[str, Stream] = {}

    def stream(self, key: str) -> Stream:
        if key not in self._streams:
            self._streams[key] = Stream(self, key)
        return self._streams[key]
