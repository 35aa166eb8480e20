"""The triangle rasteriser against a brute-force reference: pixel centres inside triangles."""
import numpy as np
import pytest

from synthfarm.addon.core.raster import rasterize, rasterize_window


def reference(triangles, width, height, origin=(0, 0)):
    mask = np.zeros((height, width), bool)
    for row in range(height):
        for col in range(width):
            x, y = col + 0.5 + origin[0], row + 0.5 + origin[1]
            for a, b, c in triangles:
                d = [(q[0] - p[0]) * (y - p[1]) - (q[1] - p[1]) * (x - p[0]) for p, q in ((a, b), (b, c), (c, a))]
                if all(v >= 0 for v in d) or all(v <= 0 for v in d):
                    if abs((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])) > 1e-12:
                        mask[row, col] = True
                        break
    return mask


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    tris = rng.uniform(-10, 40, size=(rng.integers(1, 12), 3, 2))
    assert np.array_equal(rasterize(tris, 32, 24), reference(tris, 32, 24))
    assert np.array_equal(rasterize(tris, 20, 20, origin=(-5, 3)), reference(tris, 20, 20, origin=(-5, 3)))


def test_square_area_and_degenerate_input():
    square = np.array([[[2, 2], [12, 2], [12, 7]], [[2, 2], [12, 7], [2, 7]]], float)
    mask = rasterize(square, 16, 10)
    assert mask.sum() == 50 and mask[2:7, 2:12].all() and mask.flags.f_contiguous
    assert not rasterize(np.array([[[0, 0], [5, 5], [10, 10]]], float), 16, 16).any()  # a line covers nothing
    assert not rasterize(np.zeros((0, 3, 2)), 4, 4).any()


def test_same_pixels_as_the_rasteriser_before_batching():
    """Bit-identical to the old code (tests/support/labels_before.py), also where pixel centres lie exactly on
    edges and corners (coordinates on the half-pixel lattice), on canvases with an origin, and with degenerate
    and far-away triangles."""
    import labels_before

    rng = np.random.default_rng(3)
    for k in range(200):
        count = int(rng.integers(1, 30))
        tris = rng.uniform(-15, 45, size=(count, 3, 2))
        if k % 2:                                               # vertices on pixel centres and corners
            tris = rng.integers(-6, 30, size=(count, 3, 2)) / 2
        tris[::7, 2] = tris[::7, 1]                             # degenerate
        tris[::11] *= 1e3                                       # far beyond the canvas
        width, height = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        origin = (int(rng.integers(-10, 10)), int(rng.integers(-10, 10))) if k % 3 else (0, 0)
        assert np.array_equal(rasterize(tris, width, height, origin),
                              labels_before.rasterize(tris, width, height, origin))
        window, old = rasterize_window(tris, width, height, origin), labels_before.rasterize_window(
            tris, width, height, origin)
        assert window[1:] == old[1:] and np.array_equal(window[0], old[0]) and window[0].flags.f_contiguous
