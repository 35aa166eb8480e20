"""Per-object labels of one rendered frame: the mask gives what is visible, the evaluated geometry
gives the rest (amodal box and area, truncation, pose, 3D box), with no extra render."""
from __future__ import annotations

import bpy
import numpy as np

from ..core.dataset.models import mesh_of, model_key
from ..core.groundtruth import Mesh, geometry_labels_many, instances_from_mask, keypoint_labels_many, visibility
from .generators import GENERATOR_PROP
from .keypoints import keypoint_children, world_keypoints
from .scene import labelled_class


# models are kept across jobs (copies of an asset recur in every job of a recipe) up to this many bytes of triangles,
# vertices and faces: beyond it they are forgotten when a job ends
MODELS_KEPT_BYTES = 256 * 2**20


class GeometryCache:
    """Triangles of meshes in their local frame, read once per mesh and job (instances share meshes), and models,
    worked out once per geometry and scale for as long as the cache lives (they depend on nothing else)."""

    def __init__(self):
        self._local: dict[int, Mesh] = {}
        self._keys: dict[tuple, list] = {}  # (shapes, scale, first and last vertex) -> [(local mesh, key)]
        self.models: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # model key -> (vertices, faces), metres
        self._models_bytes = 0

    def clear(self):
        """Forget the meshes (read by address: an address may be reused once a job's data is freed); the models stay
        unless they hold more than MODELS_KEPT_BYTES."""
        self._local.clear()
        if self._models_bytes > MODELS_KEPT_BYTES:
            self.release()

    def release(self):
        """Forget everything."""
        self._local.clear()
        self._keys.clear()
        self.models.clear()
        self._models_bytes = 0

    def model_keys(self, meshes: list[Mesh], scales) -> list[str]:
        """The key of each object's model (its geometry at its scale, ``scales`` (N, 3)); the meshes are kept in
        ``models``. Objects whose meshes are the same to the bit at the same scale (copies of an asset, in this job
        or an earlier one) are worked out once: they are matched on their vertices and corners (the triangles are
        gathered only for a new model)."""
        # float noise of a transform is no other model (rounded in the scales' own type: Blender's float32 matrices)
        rounded = np.round(np.asarray(scales), 6).tolist()
        return [self._model_key(mesh, tuple(scale)) for mesh, scale in zip(meshes, rounded)]

    def _model_key(self, mesh: Mesh, scale: tuple) -> str:
        vertices, corners = np.ascontiguousarray(mesh.vertices, dtype=np.float64), mesh.corners
        if vertices is not mesh.vertices:  # compared to the bit below
            mesh = Mesh(vertices, corners)
        shortlist = self._keys.setdefault((vertices.shape, corners.shape, scale, vertices[:1].tobytes(),
                                           vertices[-1:].tobytes()), [])
        for k, (seen, key) in enumerate(shortlist):
            if seen is mesh:
                return key
            if (np.array_equal(seen.vertices.view(np.uint64), vertices.view(np.uint64))
                    and np.array_equal(seen.corners, corners)):
                shortlist[k] = (mesh, key)  # the same bytes: this job's copies of the mesh then match it as it is
                return key
        model_vertices, faces = mesh_of(mesh, np.array(scale))
        key = model_key(model_vertices)
        if key not in self.models:
            self.models[key] = (model_vertices, faces)
            self._models_bytes += model_vertices.nbytes + faces.nbytes
        shortlist.append((mesh, key))
        self._models_bytes += vertices.nbytes + corners.nbytes
        return key

    def local_mesh(self, obj, depsgraph) -> Mesh:
        """The object's evaluated triangles in its own frame (a mesh without modifiers is read once per job)."""
        modified = len(obj.modifiers) > 0
        key = obj.data.as_pointer()
        if not modified and key in self._local:
            return self._local[key]
        evaluated = obj.evaluated_get(depsgraph) if modified else obj
        mesh = evaluated.to_mesh() if modified else obj.data
        try:
            coords = np.empty(len(mesh.vertices) * 3, dtype=np.float32)  # Blender's own type: read 3x as fast
            mesh.vertices.foreach_get("co", coords)
            local = Mesh(coords.astype(np.float64).reshape(-1, 3), _triangle_corners(mesh).reshape(-1, 3))
        finally:
            if modified:
                evaluated.to_mesh_clear()
        if not modified:
            self._local[key] = local
        return local


def _triangle_corners(mesh) -> np.ndarray:
    """The vertex of each corner of the mesh's loop triangles, flat (int64). A mesh of triangles only is its own
    loop triangles, face by face, each from its first corner: its corners' vertices are read as they are (~10x as
    fast as through loop_triangles, whose vertices are a getter per triangle)."""
    corner_vert = mesh.attributes.get(".corner_vert")
    if corner_vert is not None and len(mesh.loops) == 3 * len(mesh.polygons):
        corners = np.empty(len(mesh.loops), dtype=np.int32)  # the attribute's own type
        corner_vert.data.foreach_get("value", corners)
        return corners.astype(np.int64)
    mesh.calc_loop_triangles()
    corners = np.empty(len(mesh.loop_triangles) * 3, dtype=np.int64)
    mesh.loop_triangles.foreach_get("vertices", corners)
    return corners


def frame_labels(scene, objects: list, index: np.ndarray, K: np.ndarray, world_to_cam: np.ndarray,
                 class_ids: dict[str, int], geometry: GeometryCache, depth: np.ndarray | None = None,
                 view=None) -> list[dict]:
    """One record per labelled object (instance ids are 1..N in ``objects`` order); ``view`` (a
    :class:`~..core.lens.View`) projects through a distorting lens."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    resolution = (index.shape[1], index.shape[0])
    visible = instances_from_mask(index, range(1, len(objects) + 1))
    near = scene.camera.data.clip_start
    # every object's matrix and bounds in one array each (a box's least and greatest corner as each object's own
    # np.min/np.max over its 8 corners gives them)
    matrices = np.array([obj.matrix_world for obj in objects]).reshape(-1, 4, 4)
    corners = np.array([[c[:] for c in obj.bound_box] for obj in objects]).reshape(-1, 8, 3)
    meshes = [geometry.local_mesh(obj, depsgraph) for obj in objects]
    shapes = list(zip(meshes, matrices, corners.min(axis=1), corners.max(axis=1)))
    geometry_of = geometry_labels_many(K, world_to_cam, resolution, shapes, near=near, view=view)
    records = []
    children = keypoint_children()
    # each object's scale (its axes' lengths) as np.linalg.norm(matrix[:3, :3], axis=0) gives it, for all at once
    models = geometry.model_keys(meshes, np.linalg.norm(matrices[:, :3, :3], axis=1))
    keypoints = []  # (points, instance id) of the objects that have them
    for iid, (obj, model, geo) in enumerate(zip(objects, models, geometry_of), start=1):
        cls = labelled_class(obj)
        seen = visible.get(iid)
        pixels = seen.pixels if seen else 0
        records.append({
            "instance_id": iid, "name": obj.name, "generator": obj.get(GENERATOR_PROP), "class": cls,
            "class_id": class_ids[cls], "model": model, "visible_pixels": pixels,
            "bbox": seen.bbox if seen else None, "segmentation": seen.rle if seen else None,
            "visibility": visibility(pixels, geo["amodal_pixels"]), **geo,
        })
        points = world_keypoints(obj, children=children.get(obj.as_pointer(), []))
        if points and depth is not None:
            keypoints.append(({k: list(v) for k, v in points.items()}, iid))
    for (_, iid), labels in zip(keypoints, keypoint_labels_many(K, world_to_cam, keypoints, index, depth,
                                                                lens=view.lens if view else None)):
        records[iid - 1]["keypoints"] = labels
    return records
