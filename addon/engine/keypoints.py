"""Keypoints an asset or a scene object defines: child empties and vertex groups named ``kp:<name>``.

Asset templates keep their keypoints (in the template's own frame) in the custom property
``synthfarm_keypoints``, because joining meshes drops empties and vertex group names.
"""
from __future__ import annotations

import re

import bpy
import numpy as np
from mathutils import Matrix, Vector

PREFIX = "kp:"
PROP = "synthfarm_keypoints"
_SUFFIX = re.compile(r"\.\d{3}$")  # Blender's duplicate-name suffix


def keypoint_children() -> dict[int, list]:
    """Every object's children named kp: (by the parent's address), in one look at bpy.data.objects."""
    children: dict[int, list] = {}
    for child in bpy.data.objects:
        if child.parent is not None and child.name.startswith(PREFIX):
            children.setdefault(child.parent.as_pointer(), []).append(child)
    return children


def keypoint_name(id_name: str) -> str:
    return _SUFFIX.sub("", id_name[len(PREFIX):])


def world_keypoints(obj, matrix: Matrix | None = None, children: list | None = None) -> dict[str, Vector]:
    """Keypoints of ``obj`` in world space (``matrix`` stands in for its matrix_world when given; ``children`` for
    its children named kp:, in bpy.data.objects' order: Object.children looks at every object each time)."""
    matrix = matrix if matrix is not None else obj.matrix_world
    points = {name: matrix @ Vector(local) for name, local in (obj.get(PROP) or {}).items()}
    for child in children if children is not None else getattr(obj, "children", ()):
        if child.name.startswith(PREFIX) and child.type == "EMPTY":
            # from the parent's matrix, not child.matrix_world: that is stale for data loaded from a file
            world = matrix @ child.matrix_parent_inverse @ child.matrix_basis
            points[keypoint_name(child.name)] = world.translation.copy()
    groups = {g.index: keypoint_name(g.name) for g in obj.vertex_groups if g.name.startswith(PREFIX)}
    if groups and obj.type == "MESH":
        sums: dict[int, list] = {}
        for vertex in obj.data.vertices:
            for element in vertex.groups:
                if element.group in groups and element.weight > 0:
                    sums.setdefault(element.group, []).append(vertex.co[:])
        for index, coords in sums.items():
            points[groups[index]] = matrix @ Vector(np.mean(coords, axis=0).tolist())
    return points
