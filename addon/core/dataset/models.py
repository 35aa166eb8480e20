"""Object models: one mesh per distinct model (its geometry and scale), as PLY files.

The render writes ``models/<key>.ply`` (metres, in the object's frame with its scale applied, so that
pose R, t of the annotations places it) the first time a model appears; an object's annotation names its
key. The key is a hash of the scaled geometry: instances of one asset at one scale share it, a scale
jitter makes another model. The BOP export turns these into its models/ (millimetres).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from plyfile import PlyData, PlyElement

from .native import atomic_path


def mesh_of(triangles, scale) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (N, 3) float32, faces (M, 3) int32) of local triangles (T, 3, 3) scaled per axis, or of a mesh's
    triangles given as its ``vertices`` (V, 3) and the ``corners`` (T, 3) of each triangle (the same arrays: its
    vertices scaled and sorted once each rather than once per corner)."""
    if hasattr(triangles, "corners"):
        return _mesh_of_vertices(triangles.vertices, np.asarray(triangles.corners), scale)
    points = (np.asarray(triangles, dtype=np.float64).reshape(-1, 3) * np.asarray(scale, dtype=np.float64))
    vertices, faces = unique_rows(points.astype(np.float32))
    return vertices, canonical_faces(faces.reshape(-1, 3).astype(np.int32))


def _mesh_of_vertices(vertices, corners: np.ndarray, scale) -> tuple[np.ndarray, np.ndarray]:
    """mesh_of(vertices[corners], scale): the corners' rows are the vertices' rows, so their distinct rows are the
    vertices' where every vertex is a corner, and each corner's row is its vertex's. Where a vertex is no corner's,
    or a coordinate is -0.0 or NaN (which of two rows equal but not to the bit np.unique keeps depends on their
    order), the triangles themselves are used."""
    vertices = np.asarray(vertices, dtype=np.float64)
    points = (vertices * np.asarray(scale, dtype=np.float64)).astype(np.float32)
    if (not len(points) or not np.bincount(corners.ravel(), minlength=len(points)).all()
            or np.isnan(points).any() or (np.signbit(points) & (points == 0)).any()):
        return mesh_of(vertices[corners], scale)
    unique, inverse = unique_rows(points)
    return unique, canonical_faces(inverse[corners].reshape(-1, 3).astype(np.int32))


def canonical_faces(faces: np.ndarray) -> np.ndarray:
    """The same triangles in one order whatever order the mesh gave them in: each starts at its smallest vertex
    (its winding kept), and the triangles are sorted. Blender builds a primitive's loops in an order that changes
    from run to run (the same triangles), and the model files of one seed must be the same bytes."""
    if not len(faces):
        return faces
    start = faces.argmin(axis=1)[:, None]
    faces = np.take_along_axis(faces, (start + np.arange(3)) % 3, axis=1)
    return faces[np.lexsort(faces.T[::-1])]


def model_key(vertices: np.ndarray) -> str:
    """A model's key: its distinct vertex positions (sorted, to a micrometre), so that one mesh at one scale
    gets one key however its faces are split or ordered (an evaluated mesh may triangulate otherwise)."""
    points, _ = unique_rows(np.round(np.asarray(vertices, dtype=np.float64), 6))
    return hashlib.sha256(np.ascontiguousarray(points).tobytes()).hexdigest()[:16]


def unique_rows(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(points, axis=0, return_inverse=True)``, the same arrays, sorted by columns (lexsort) rather than
    as records (several times faster). Where rows are equal but not to the bit (0.0 and -0.0) np.unique keeps
    whichever its sort puts first: then, and with NaNs, np.unique itself answers."""
    points = np.ascontiguousarray(points)
    order = np.lexsort(points.T[::-1])
    rows = points[order]
    same = (rows[1:] == rows[:-1]).all(axis=1)
    if (same & (np.signbit(rows[1:]) != np.signbit(rows[:-1])).any(axis=1)).any() or np.isnan(points).any():
        unique, inverse = np.unique(points, axis=0, return_inverse=True)
        return unique, inverse.reshape(-1)
    first = np.r_[True, ~same][:len(rows)]
    inverse = np.empty(len(points), dtype=np.intp)
    inverse[order] = np.cumsum(first) - 1
    return rows[first], inverse


def ply(vertices: np.ndarray, faces: np.ndarray) -> PlyData:
    """A binary PLY (vertex x, y, z as float; face vertex_indices)."""
    vertex = np.empty(len(vertices), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    vertex["x"], vertex["y"], vertex["z"] = np.asarray(vertices, dtype=np.float32).T
    face = np.empty(len(faces), dtype=[("vertex_indices", "i4", (3,))])
    face["vertex_indices"] = faces
    return PlyData([PlyElement.describe(vertex, "vertex"), PlyElement.describe(face, "face")])


def write_model(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """A binary PLY, written atomically."""
    with atomic_path(Path(path)) as tmp:
        ply(vertices, faces).write(str(tmp))


def read_model(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = PlyData.read(str(path))
    vertex = data["vertex"]
    vertices = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=-1).astype(np.float64)
    faces = np.stack(data["face"]["vertex_indices"]).astype(np.int64) if len(data["face"].data) else \
        np.zeros((0, 3), np.int64)
    return vertices, faces


def diameter(vertices: np.ndarray, chunk: int = 1024) -> float:
    """The largest distance between two vertices (as BOP's calc_pts_diameter), in chunks to bound memory."""
    points = np.unique(np.asarray(vertices, dtype=np.float64), axis=0)
    squares = (points ** 2).sum(axis=1)
    best = 0.0
    for start in range(0, len(points), chunk):
        block = points[start:start + chunk]
        distances = squares[start:start + chunk, None] + squares[None, :] - 2.0 * block @ points.T
        best = max(best, float(distances.max()))
    return float(np.sqrt(max(best, 0.0)))
