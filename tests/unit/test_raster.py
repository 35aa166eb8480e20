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
    same_pixels_as_before(np.random.default_rng(3))


def test_same_pixels_without_the_edges_in_order(monkeypatch):
    """The rasteriser's general path (every edge tested per pair, for triangles without a left or a right edge:
    coordinates that are not finite) covers the same pixels."""
    from synthfarm.addon.core import raster

    monkeypatch.setattr(raster, "_left_right_third", lambda N: None)
    same_pixels_as_before(np.random.default_rng(4))


def same_pixels_as_before(rng):
    import labels_before

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


def scene_of_sets(rng, count, sets, width, height):
    """``count`` small triangles (some large, some degenerate, some off the canvas) in ``sets`` sets."""
    centres = rng.uniform(-0.2, 1.2, (count, 1, 2)) * (width, height)
    tris = centres + rng.normal(0, rng.choice([1.5, 4, 25], count, p=[0.5, 0.4, 0.1])[:, None, None], (count, 3, 2))
    tris[::13, 2] = tris[::13, 1]
    return tris, np.sort(rng.integers(0, sets, count))


def check_cover(coverage, tris, owners, width, height):
    import labels_before

    expected = [s for s in np.unique(owners) if labels_before.rasterize_window(tris[owners == s], width, height)[0].size]
    assert coverage.sets.tolist() == [int(s) for s in expected]
    for j, s in enumerate(expected):
        window, top, left = coverage.window(j)
        old, old_top, old_left = labels_before.rasterize_window(tris[owners == s], width, height)
        assert (top, left) == (old_top, old_left) and np.array_equal(window, old), f"set {s}"


def test_buffers_kept_between_calls_change_no_result(monkeypatch):
    """cover() keeps its arrays from call to call: calls with more, then fewer, then more triangles, pairs and
    sets, on canvases of other sizes, each give every set the old rasteriser's window, and a call does not change
    what an earlier one returned; arrays above KEPT_BYTES are made afresh, with the same results."""
    from synthfarm.addon.core import raster

    rng = np.random.default_rng(11)
    cases = [(*scene_of_sets(rng, count, sets, w, h), w, h) for count, sets, w, h in
             [(3000, 40, 320, 240), (6, 2, 31, 17), (900, 9, 97, 61), (4000, 60, 640, 480), (1, 1, 8, 8),
              (200, 3, 400, 30)]]
    for buffers, kept in ((raster._Buffers(), raster.KEPT_BYTES), (raster._Buffers(), 2048)):
        monkeypatch.setattr(raster, "_buffers", buffers)
        monkeypatch.setattr(raster, "KEPT_BYTES", kept)
        returned = []
        for tris, owners, w, h in cases + cases[::-1]:
            coverage = raster.cover(tris, owners, w, h)
            check_cover(coverage, tris, owners, w, h)
            returned.append((coverage, {k: v.copy() for k, v in vars(coverage).items()}))
        for coverage, copies in returned:
            assert all(np.array_equal(getattr(coverage, k), v) for k, v in copies.items())
        assert buffers.arrays and all(a.nbytes <= kept for a in buffers.arrays.values())


def test_each_thread_rasterises_with_its_own_buffers():
    """Threads rasterising at once (numpy lets go of the GIL inside its loops) do not share the kept arrays."""
    import threading

    from synthfarm.addon.core.raster import cover

    rng = np.random.default_rng(5)
    cases = [scene_of_sets(rng, count, sets, 200, 150) for count, sets in ((2500, 20), (400, 30), (1500, 3))]
    expected = [cover(tris, owners, 200, 150) for tris, owners in cases]
    failures = []

    def work(case):
        tris, owners = cases[case]
        for _ in range(30):
            try:
                got = cover(tris, owners, 200, 150)
            except Exception as err:  # e.g. another thread's indices in a shared array
                failures.append(repr(err))
                continue
            if not all(np.array_equal(getattr(got, k), getattr(expected[case], k)) for k in vars(got)):
                failures.append(case)

    threads = [threading.Thread(target=work, args=(i % len(cases),)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
