"""The geometry labels of a frame stay bit-identical to main's before the batching of issue 13 (the same seed gives
the same dataset): many objects, inside the image, cut by its borders, far beyond them, off-screen, behind the
camera, through the near plane, sub-pixel, empty, degenerate, flattened, covering the whole image; pinhole and
distorted views. The oracle is the old code, kept verbatim in tests/support/labels_before.py; the comparison is of
the JSON text the dataset writes (every float to its last bit, -0.0 and 0.0 apart)."""
import json

import labels_before
import numpy as np
import pytest

from synthfarm.addon.core import groundtruth
from synthfarm.addon.core.groundtruth import Mesh, blender_to_opencv_camera, geometry_labels_many
from synthfarm.addon.core.lens import Lens, render_view


def box_mesh():
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float) / 2
    faces = [(0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5), (0, 4, 5), (0, 5, 1), (2, 3, 7), (2, 7, 6), (0, 2, 6),
             (0, 6, 4), (1, 5, 7), (1, 7, 3)]
    return corners[np.array(faces)]


def sphere_mesh(rings=7, segments=11):
    theta = np.linspace(0, np.pi, rings + 1)
    phi = np.linspace(0, 2 * np.pi, segments + 1)
    grid = np.stack([np.sin(theta)[:, None] * np.cos(phi), np.sin(theta)[:, None] * np.sin(phi),
                     np.cos(theta)[:, None] * np.ones_like(phi)], -1) / 2
    a, b, c, d = grid[:-1, :-1], grid[:-1, 1:], grid[1:, 1:], grid[1:, :-1]
    return np.concatenate([np.stack([a, b, c], -2).reshape(-1, 3, 3), np.stack([a, c, d], -2).reshape(-1, 3, 3)])


def random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def scene(seed, width, height, count=60, as_meshes=False):
    """A camera and ``count`` objects as frame_labels handed them over before meshes: (world triangles, matrix_world,
    local bounds low, high), or with ``as_meshes`` as it does now, a Mesh in the object's frame (each vertex shared by
    the corners at that point) instead of the world triangles; each object is placed at a point given in the
    camera's frame (OpenCV: z forward)."""
    rng = np.random.default_rng(seed)
    cam = np.eye(4)
    cam[:3, :3], cam[:3, 3] = random_rotation(rng), rng.uniform(-3, 3, 3)
    cam_to_world, world_to_cam = blender_to_opencv_camera(cam)
    f = rng.uniform(0.6, 1.4) * width
    K = np.array([[f, 0, width / 2 + rng.uniform(-5, 5)], [0, f, height / 2 + rng.uniform(-5, 5)], [0, 0, 1.0]])
    soup = rng.uniform(-0.5, 0.5, size=(40, 3, 3))
    soup[:3, 1] = soup[:3, 0]                                        # degenerate: two corners at one point
    soup[3:6, 2] = (soup[3:6, 0] + soup[3:6, 1]) / 2                 # degenerate: corners on a line
    meshes = [box_mesh(), sphere_mesh(), soup, sphere_mesh(3, 5), np.zeros((0, 3, 3))]
    objects = []
    for k in range(count):
        local = meshes[k % len(meshes)]
        u, v = rng.uniform(-0.3, 1.3), rng.uniform(-0.3, 1.3)        # where in the image (outside it too)
        z = rng.choice([rng.uniform(1, 8), rng.uniform(-3, -0.2), rng.uniform(-0.3, 0.3), rng.uniform(40, 200),
                        rng.uniform(0.05, 0.6)], p=[0.6, 0.1, 0.1, 0.1, 0.1])  # ahead, behind, through, far, close
        point = np.array([(u * width - K[0, 2]) * abs(z) / f, (v * height - K[1, 2]) * abs(z) / f, z, 1.0])
        if k % 17 == 5:
            point[0] += 3 * width * abs(z) / f                         # far beyond the right border
        matrix = np.eye(4)
        scale = rng.uniform(0.05, 1.5, 3) * (np.arange(3) != rng.integers(0, 12))  # now and then one axis flat
        matrix[:3, :3] = random_rotation(rng) * scale
        matrix[:3, 3] = (cam_to_world @ point)[:3]
        if k == count - 1:                                           # huge and close: covers the whole image
            matrix[:3, :3], matrix[:3, 3] = random_rotation(rng) * 40, cam_to_world[:3, 3] + cam_to_world[:3, 2]
        world = local.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]  # what frame_labels did to every corner
        lo, hi = (local.reshape(-1, 3).min(axis=0), local.reshape(-1, 3).max(axis=0)) if len(local) else \
            (np.full(3, -0.5), np.full(3, 0.5))
        if as_meshes:
            vertices, corners = np.unique(local.reshape(-1, 3), axis=0, return_inverse=True)
            objects.append((Mesh(vertices, corners.reshape(-1, 3)), matrix, lo, hi))
        else:
            objects.append((world.reshape(-1, 3, 3), matrix, lo, hi))
    return K, world_to_cam, objects



def text(labels):
    return json.dumps(labels, indent=1, allow_nan=False)


@pytest.mark.parametrize("seed, size", [(1, (640, 480)), (2, (640, 480)), (3, (97, 61)), (4, (33, 200)),
                                        (5, (320, 240))])
@pytest.mark.parametrize("meshes", [False, True], ids=["world triangles", "meshes"])
def test_pinhole_labels_are_bit_identical_to_the_old_code(seed, size, meshes):
    K, world_to_cam, objects = scene(seed, *size)
    near = 0.01 if seed % 2 else 0.1
    old = labels_before.geometry_labels_many(K, world_to_cam, size, objects, near)
    new = geometry_labels_many(K, world_to_cam, size, scene(seed, *size, as_meshes=meshes)[2], near)
    kinds = {"seen": sum(o["amodal_pixels"] > 0 for o in old), "cut": sum(0 < o["truncation"] < 1 for o in old),
             "unseen": sum(o["amodal_pixels"] == 0 for o in old), "no 3D box in the image":
             sum(o["box3d"]["image"] is None for o in old)}
    assert all(kinds.values()), kinds  # the scene has every kind of object
    assert len(new) == len(old)
    for k, (a, b) in enumerate(zip(new, old)):
        assert text(a) == text(b), f"object {k}"


def test_points_go_through_products_of_many_rows(monkeypatch):
    """Points are moved in products of several rows: every row as in one product of all of them, however many
    points there are and however they are cut into products (a product of one row comes out otherwise)."""
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(3, 3))
    points = rng.normal(size=(200, 3)) * 1e3
    whole = points @ matrix.T
    assert not np.array_equal(points[:1] @ matrix.T, whole[:1])  # numpy's one-row product: other last bits
    monkeypatch.setattr(groundtruth, "BLAS_ROWS", 8)
    for n in range(1, 60):
        assert np.array_equal(groundtruth._product(points[:n], matrix), whole[:n]), n


def test_distorted_labels_are_bit_identical_to_the_old_code():
    W, H = 160, 120
    lens = Lens(np.array([[110.0, 0, 80], [0, 110.0, 60], [0, 0, 1]]), (W, H), "brown_conrady",
                (-0.2, 0.05, 0.001, -0.002, 0.0))
    view = render_view(lens)
    K, world_to_cam, objects = scene(9, W, H, count=25)
    K = lens.K
    old = labels_before.geometry_labels_many(K, world_to_cam, (W, H), objects, 0.01, view)
    new = geometry_labels_many(K, world_to_cam, (W, H), scene(9, W, H, count=25, as_meshes=True)[2], 0.01, view)
    assert sum(o["amodal_pixels"] > 0 for o in old) > 5
    for k, (a, b) in enumerate(zip(new, old)):
        assert text(a) == text(b), f"object {k}"
