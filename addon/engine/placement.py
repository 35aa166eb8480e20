"""Collision-free placement: every object already in the scene is an obstacle, tested exactly.

An :class:`Obstacles` set holds a world-space BVH tree (``mathutils.bvhtree``) of every mesh that
renders, with its bounds for a quick first test. A candidate pose collides when a triangle of the
candidate crosses a triangle of an obstacle (``BVHTree.overlap``), when one lies wholly inside the other
(closed meshes: the nearest surface point faces away), or when it comes closer than ``gap``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import bpy
import numpy as np
from mathutils import Matrix, Quaternion, Vector
from mathutils.bvhtree import BVHTree

log = logging.getLogger(__name__)


class Meshes:
    """Each object's evaluated mesh in its own frame (vertices and triangles) and whether it is closed,
    read once per object; poses are then applied with numpy."""

    def __init__(self):
        self._local: dict[int, tuple[np.ndarray, np.ndarray, list, bool]] = {}

    def _read(self, obj):
        key = obj.as_pointer() if obj.modifiers else obj.data.as_pointer()  # instances share their mesh
        if key not in self._local:
            depsgraph = bpy.context.evaluated_depsgraph_get()
            evaluated = obj.evaluated_get(depsgraph)
            mesh = evaluated.to_mesh()
            try:
                mesh.calc_loop_triangles()
                coords = np.empty(len(mesh.vertices) * 3)
                mesh.vertices.foreach_get("co", coords)
                corners = np.empty(len(mesh.loop_triangles) * 3, dtype=np.int32)
                mesh.loop_triangles.foreach_get("vertices", corners)
                edge_of_loop = np.empty(len(mesh.loops), dtype=np.int32)
                mesh.loops.foreach_get("edge_index", edge_of_loop)
                uses = np.bincount(edge_of_loop, minlength=len(mesh.edges))
                closed = bool(len(uses) and (uses == 2).all())
            finally:
                evaluated.to_mesh_clear()
            tris = corners.reshape(-1, 3)
            self._local[key] = (coords.reshape(-1, 3), tris, tris.tolist(), closed)
        return self._local[key]

    def local(self, obj) -> tuple[np.ndarray, bool]:
        """(triangles (T, 3, 3) in the object's frame, closed)."""
        vertices, tris, _, closed = self._read(obj)
        return vertices[tris], closed

    def vertices(self, obj) -> np.ndarray:
        return self._read(obj)[0]

    def triangles(self, obj) -> np.ndarray:
        """(T, 3) vertex indices."""
        return self._read(obj)[1]

    def shape(self, obj, matrix=None) -> "Shape | None":
        """``obj``'s shape at ``matrix`` (4x4, default its matrix_world)."""
        vertices, tris, polygons, closed = self._read(obj)
        if not len(tris):
            return None
        m = np.array(obj.matrix_world if matrix is None else matrix, dtype=float)
        world = vertices @ m[:3, :3].T + m[:3, 3]
        tree = BVHTree.FromPolygons(world.tolist(), polygons, all_triangles=True)
        return Shape(obj.name, tree, world, world.min(axis=0), world.max(axis=0), closed)


@dataclass
class Shape:
    """One object's triangles at one pose, as a BVH tree and bounds."""

    name: str
    tree: BVHTree
    vertices: np.ndarray  # (N, 3) the mesh's vertices in world space
    lo: np.ndarray
    hi: np.ndarray
    closed: bool

    def inside(self, point) -> bool:
        """Whether a point lies inside this (closed) surface: the nearest surface point faces away."""
        location, normal, _, _ = self.tree.find_nearest(Vector(point))
        return location is not None and (Vector(point) - location).dot(normal) < 0

    def closer_than(self, points: np.ndarray, gap: float) -> bool:
        find = self.tree.find_nearest
        return any(find(Vector(p), gap)[0] is not None for p in points)


class Obstacles:
    """Everything a placement must keep clear of."""

    def __init__(self, meshes: Meshes, objects=()):
        self.meshes = meshes
        self.shapes: list[Shape] = []
        self._lo, self._hi = np.empty((0, 3)), np.empty((0, 3))
        for obj in objects:
            self.add(self.meshes.shape(obj))

    def add(self, shape: Shape | None) -> None:
        if shape is not None:
            self.shapes.append(shape)
            self._lo, self._hi = np.vstack([self._lo, shape.lo]), np.vstack([self._hi, shape.hi])

    def __len__(self) -> int:
        return len(self.shapes)

    def hit(self, shape: Shape, gap: float = 0.0, rest_on: frozenset = frozenset()) -> str | None:
        """The name of the first obstacle ``shape`` collides with (or comes within ``gap`` of, except the
        ``rest_on`` objects it stands on), else None."""
        near = np.flatnonzero(np.all(self._lo - gap <= shape.hi, axis=1) & np.all(shape.lo - gap <= self._hi, axis=1))
        for i in near:
            other = self.shapes[i]
            clearance = 0.0 if other.name in rest_on else gap
            if shape.tree.overlap(other.tree):
                return other.name
            if other.closed and other.inside(shape.vertices[0]):
                return other.name
            if shape.closed and shape.inside(other.vertices[0]):
                return other.name
            if clearance > 0 and (other.closer_than(shape.vertices, clearance)
                                  or shape.closer_than(other.vertices, clearance)):
                return other.name
        return None


def scene_obstacles(meshes: Meshes, exclude: set[str]) -> Obstacles:
    """Every rendered mesh of the scene (the base .blend, containers, objects other randomizers placed)
    except the named ones."""
    bpy.context.view_layer.update()
    return Obstacles(meshes, (o for o in bpy.context.scene.objects
                              if o.type == "MESH" and not o.hide_render and o.name not in exclude))


def upward_faces(objects, max_slope_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangles of ``objects`` whose world normal is within ``max_slope_deg`` of +Z: (triangles, unit normals,
    cumulative area for sampling by area)."""
    meshes = Meshes()
    tris = []
    for obj in objects:
        local, _ = meshes.local(obj)
        m = np.array(obj.matrix_world)
        tris.append(local @ m[:3, :3].T + m[:3, 3])
    tris = np.concatenate(tris) if tris else np.empty((0, 3, 3))
    cross = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    area = np.linalg.norm(cross, axis=1) / 2
    normals = np.divide(cross, 2 * area[:, None], out=np.zeros_like(cross), where=area[:, None] > 0)
    up = (normals[:, 2] >= np.cos(np.radians(max_slope_deg))) & (area > 0)
    return tris[up], normals[up], np.cumsum(area[up])


def sample_on_faces(rng: np.random.Generator, tris: np.ndarray, cumulative: np.ndarray) -> tuple[int, np.ndarray]:
    """A point uniform by area on the triangles: (triangle index, point)."""
    i = int(np.searchsorted(cumulative, rng.uniform(0, cumulative[-1]), side="right"))
    i = min(i, len(tris) - 1)
    u, v = rng.uniform(size=2)
    if u + v > 1:
        u, v = 1 - u, 1 - v
    a, b, c = tris[i]
    return i, a + u * (b - a) + v * (c - a)


def place(obj, meshes: Meshes, obstacles: Obstacles, propose, *, gap: float, max_tries: int,
          rest_on: frozenset = frozenset()) -> int | None:
    """Try the poses ``propose()`` draws (4x4 world matrices, or None for a draw that is no pose) until one
    keeps clear of every obstacle; the
    object takes it and joins the obstacles. Returns the number of tries, or None when none was clear."""
    for tries in range(1, max_tries + 1):
        matrix = propose()
        if matrix is None:  # the proposal itself was no pose (e.g. unsupported)
            continue
        matrix = np.asarray(matrix, dtype=float)
        shape = meshes.shape(obj, matrix)
        if shape is None or obstacles.hit(shape, gap, rest_on) is None:
            obstacles.add(shape)
            obj.rotation_mode = "QUATERNION"
            obj.matrix_world = Matrix(matrix.tolist())
            return tries
    return None


def compose(location, rotation: Quaternion, scale) -> np.ndarray:
    return np.array(Matrix.LocRotScale(Vector(location), rotation, Vector(scale)))


def resting_location(meshes: Meshes, obj, point, rotation: Quaternion, up, lift: float = 5e-5) -> np.ndarray:
    """Where ``obj``'s origin goes so that, turned by ``rotation``, its lowest point along ``up`` touches
    ``point`` (lifted by ``lift`` so that it rests on the surface without touching it) and its footprint
    is centred on the point."""
    local = meshes.vertices(obj) * np.array(obj.scale)
    turned = local @ np.array(rotation.to_matrix()).T
    up = np.asarray(up, float) / np.linalg.norm(up)
    heights = turned @ up
    lo, hi = turned.min(axis=0), turned.max(axis=0)
    centre = (lo + hi) / 2
    centre -= (centre @ up) * up  # the footprint's centre, across the up axis
    return np.asarray(point, float) - centre - (heights.min() - lift) * up


class Support:
    """The faces objects may rest on: a footprint is supported when the surface lies under each of its
    corners, no deeper than a quarter of the object's height (it does not hang over an edge)."""

    def __init__(self, tris: np.ndarray):
        flat = tris.reshape(-1, 3)
        self.tree = BVHTree.FromPolygons(flat.tolist(), np.arange(len(flat)).reshape(-1, 3).tolist(),
                                         all_triangles=True)

    def holds(self, meshes: Meshes, obj, matrix: np.ndarray, up) -> bool:
        world = meshes.vertices(obj) @ matrix[:3, :3].T + matrix[:3, 3]
        up = np.asarray(up, float) / np.linalg.norm(up)
        side = np.cross(up, [1.0, 0, 0] if abs(up[0]) < 0.9 else [0, 1.0, 0])
        side /= np.linalg.norm(side)
        other = np.cross(up, side)
        heights, a, b = world @ up, world @ side, world @ other
        base, reach = heights.min(), 0.25 * (heights.max() - heights.min()) + 1e-3
        for u in (a.min(), a.max()):
            for v in (b.min(), b.max()):
                corner = u * side + v * other + (base + 1e-3) * up
                hit = self.tree.ray_cast(Vector(corner), Vector(-up), reach)[0]
                if hit is None:
                    return False
        return True
