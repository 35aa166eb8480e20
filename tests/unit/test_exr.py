import numpy as np

from synthfarm.addon.core.exr import read_exr, write_exr


def test_exr_round_trip(tmp_path):
    depth = np.random.default_rng(0).random((5, 7), dtype=np.float32)
    depth[0, 0] = np.inf
    write_exr(tmp_path / "d.exr", {"Z": depth})
    back = read_exr(tmp_path / "d.exr")["Z"]
    assert back.dtype == np.float32 and np.array_equal(back, depth)
    write_exr(tmp_path / "h.exr", {"X": depth, "Y": depth}, half=True)
    half = read_exr(tmp_path / "h.exr")
    assert set(half) == {"X", "Y"} and half["X"].dtype == np.float16
    assert np.allclose(half["Y"][1:], depth[1:], atol=1e-3)
