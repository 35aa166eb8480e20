"""Class maps: which classes a dataset exports, with their ids, and rules that map object labels to them.

    classes:
      - {id: 1, name: toy, supercategory: toy}
      - {id: 3, name: duck, keypoints: [beak, crown, tail], skeleton: [[1, 2], [2, 3]]}
      - {id: 2, name: container}
    rules:                      # the first rule that matches decides; all keys of a rule must match
      - {match: {label: [duck, ball, car]}, class: toy}
      - {match: {name: "Apple*"}, class: toy}        # glob on the object's name
      - {match: {generator: box}, class: container}
    unmatched: drop             # or keep: an unmatched label becomes a class of its own

A rule is data, never code: matching is exact names or shell-style globs (fnmatch), nothing is evaluated.
Without a class map every label is a class, ids 1..N in the dataset's order (0 is background).
"""
from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ClassMapError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Names = Union[str, list[str]]


class Match(_Strict):
    label: Optional[Names] = None  # the object's class label, exact
    label_glob: Optional[str] = None
    name: Optional[str] = None  # glob on the Blender object name ("Apple*" matches Apple.001)
    generator: Optional[Names] = None

    def matches(self, obj: dict) -> bool:
        def one_of(value, wanted):
            return value in ([wanted] if isinstance(wanted, str) else wanted)

        return ((self.label is None or one_of(obj.get("class"), self.label))
                and (self.label_glob is None or fnmatchcase(str(obj.get("class")), self.label_glob))
                and (self.name is None or fnmatchcase(str(obj.get("name")), self.name))
                and (self.generator is None or one_of(obj.get("generator"), self.generator)))


class Rule(_Strict):
    match: Match
    class_: str = Field(alias="class")


class ClassEntry(_Strict):
    id: int = Field(ge=1)
    name: str = Field(min_length=1)
    supercategory: Optional[str] = None
    keypoints: list[str] = []  # COCO keypoint order for this class
    skeleton: list[tuple[int, int]] = []  # COCO skeleton: 1-based pairs of keypoint indices


class ClassMap(_Strict):
    classes: list[ClassEntry] = Field(min_length=1)
    rules: list[Rule] = []
    unmatched: Literal["drop", "keep"] = "drop"

    @model_validator(mode="after")
    def _consistent(self):
        ids = [c.id for c in self.classes]
        names = [c.name for c in self.classes]
        for what, values in (("id", ids), ("name", names)):
            dupes = sorted({v for v in values if values.count(v) > 1}, key=str)
            if dupes:
                raise ValueError(f"classes: {what} {dupes[0]!r} is used twice")
        for i, rule in enumerate(self.rules):
            if rule.class_ not in names:
                raise ValueError(f"rules[{i}].class: {rule.class_!r} is not in classes {names}")
        return self

    @classmethod
    def default(cls, labels: list[str]) -> "ClassMap":
        """Every label its own class, ids 1..N in the given order."""
        return cls(classes=[ClassEntry(id=i, name=n) for i, n in enumerate(labels, start=1)], unmatched="drop",
                   rules=[])

    def resolve(self, obj: dict) -> Optional[ClassEntry]:
        """The class of an annotated object, or None to leave it out."""
        for rule in self.rules:
            if rule.match.matches(obj):
                return self.by_name(rule.class_)
        found = self.by_name(obj.get("class"))
        if found is not None or self.unmatched == "drop":
            return found
        entry = ClassEntry(id=max(c.id for c in self.classes) + 1, name=str(obj.get("class")))
        self.classes.append(entry)
        return entry

    def by_name(self, name) -> Optional[ClassEntry]:
        return next((c for c in self.classes if c.name == name), None)


def load_class_map(path: str | Path) -> ClassMap:
    path = Path(path)
    if not path.is_file():
        raise ClassMapError(f"class map {str(path)!r} not found")
    try:
        return ClassMap.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except yaml.YAMLError as err:
        raise ClassMapError(f"{path}: not valid YAML: {err}") from None
    except ValidationError as err:
        lines = [".".join(str(p) for p in e["loc"]) + ": " + e["msg"].removeprefix("Value error, ")
                 for e in err.errors()]
        raise ClassMapError(f"{path}: invalid class map\n  " + "\n  ".join(lines)) from None
