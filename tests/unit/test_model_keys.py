"""Models' vertices, faces and keys: the same arrays and keys as np.unique gives (the dataset's models/ and each
annotation's model key stay as they were), also with duplicate rows, 0.0 beside -0.0 and NaN."""
import hashlib

import numpy as np

from synthfarm.addon.core.dataset.models import canonical_faces, mesh_of, model_key, ply, unique_rows


def test_unique_rows_are_numpys():
    rng = np.random.default_rng(0)
    for k in range(2000):
        n = int(rng.integers(0, 50))
        points = rng.integers(-3, 4, size=(n, 3)).astype([np.float32, np.float64][k % 2]) * rng.choice([1.0, 0.5])
        if k % 3 == 0:                                                  # zeros of both signs: equal rows, other bits
            points[points == 0] *= rng.choice([-1.0, 1.0], size=int((points == 0).sum()))
        if k % 7 == 0 and n:
            points[rng.integers(0, n), rng.integers(0, 3)] = np.nan
        expected, inverse = np.unique(points, axis=0, return_inverse=True)
        rows, ours = unique_rows(points)
        assert rows.dtype == expected.dtype and rows.shape == expected.shape
        assert rows.tobytes() == expected.tobytes() and np.array_equal(ours, inverse.reshape(-1))


def test_mesh_and_key_are_what_np_unique_gives():
    rng = np.random.default_rng(1)
    grid = rng.integers(-20, 20, size=(300, 3)) / 7.0
    grid[::9, 0] = rng.choice([-1e-9, 1e-9], size=len(grid[::9]))      # round to -0.0 and 0.0 in the key
    grid[:2] = [[-1e-9, 1, 2], [1e-9, 1, 2]]                            # one key row from two vertices
    triangles = grid[rng.integers(0, len(grid), size=(400, 3))]
    triangles[0] = grid[:3]
    scale = np.array([0.3, 1.7, 2.0])
    points = (triangles.reshape(-1, 3) * scale).astype(np.float32)
    vertices, faces = np.unique(points, axis=0, return_inverse=True)
    key = hashlib.sha256(np.unique(np.round(vertices.astype(np.float64), 6), axis=0).tobytes()).hexdigest()[:16]
    ours, our_faces = mesh_of(triangles, scale)
    assert ours.tobytes() == vertices.tobytes() and our_faces.tobytes() == canonical_faces(faces.reshape(-1, 3).astype(
        np.int32)).tobytes()
    assert model_key(ours) == key


def test_the_same_triangles_in_another_order_give_the_same_model_bytes(tmp_path):
    """Blender builds a primitive's loops in an order that changes from run to run (seen: a UV sphere's triangles
    came in 4 orders in 4 processes); the model file of one seed must not change with it."""
    rng = np.random.default_rng(2)
    grid = rng.integers(-20, 20, size=(200, 3)) / 7.0
    triangles = grid[np.array([rng.choice(len(grid), 3, replace=False) for _ in range(300)])]
    shuffled = triangles[rng.permutation(len(triangles))]
    shuffled = np.stack([np.roll(t, int(r), axis=0) for t, r in zip(shuffled, rng.integers(0, 3, len(shuffled)))])
    files = []
    for k, tris in enumerate((triangles, shuffled)):
        vertices, faces = mesh_of(tris, np.ones(3))
        ply(vertices, faces).write(str(tmp_path / f"{k}.ply"))
        files.append((tmp_path / f"{k}.ply").read_bytes())
    assert files[0] == files[1]
    vertices, faces = mesh_of(triangles, np.ones(3))  # the same triangles, each with its winding
    ours = {tuple(np.roll(f, -int(np.argmin(f)))) for f in faces.tolist()}
    _, inverse = np.unique(triangles.reshape(-1, 3).astype(np.float32), axis=0, return_inverse=True)
    assert ours == {tuple(np.roll(f, -int(np.argmin(f)))) for f in inverse.reshape(-1, 3).tolist()}


def test_a_mesh_gives_the_arrays_of_its_triangles(monkeypatch):
    """A mesh given as vertices and corners (what the labels read from Blender) gives mesh_of's arrays of its
    triangles to the bit, worked out from the vertices where that is the same (every vertex a corner, no -0.0, no
    NaN) and from the triangles otherwise."""
    from synthfarm.addon.core import groundtruth
    from synthfarm.addon.core.dataset import models

    rng = np.random.default_rng(3)
    fallbacks = []
    real = models.mesh_of
    monkeypatch.setattr(models, "mesh_of", lambda t, s: fallbacks.append(1) or real(t, s))
    for k in range(400):
        vertices = rng.integers(-20, 20, size=(int(rng.integers(3, 80)), 3)) / 7.0
        vertices[rng.integers(0, len(vertices), size=3)] = vertices[0]           # equal positions, other vertices
        corners = rng.integers(0, len(vertices), size=(len(vertices) // 3 + int(rng.integers(1, 80)), 3))
        corners[: len(vertices) // 3 + 1].flat[: len(vertices)] = np.arange(len(vertices))  # every vertex a corner
        case = k % 5
        if case == 1:
            corners[corners == len(vertices) - 1] = 0                            # a vertex that is no corner's
        elif case == 2:
            vertices[rng.integers(0, len(vertices)), 1] = -0.0
        elif case == 3:
            vertices[rng.integers(0, len(vertices)), 2] = -1e-60                 # -0.0 once in float32
        elif case == 4 and k % 10 == 4:
            vertices[rng.integers(0, len(vertices)), 0] = np.nan
        scale = rng.choice([1.0, 0.25, 3.0], size=3)
        expected = real(vertices[corners], scale)
        fallbacks.clear()
        ours = real(groundtruth.Mesh(vertices, corners), scale)
        assert [a.dtype for a in ours] == [a.dtype for a in expected]
        assert all(a.tobytes() == b.tobytes() and a.shape == b.shape for a, b in zip(ours, expected))
        assert bool(fallbacks) == (case in (1, 2, 3) or np.isnan(vertices).any()), case  # the vertices' way otherwise
