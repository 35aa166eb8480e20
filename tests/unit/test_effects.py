"""Image effects and backplates: pure numpy, each doing what it says, drawn noise reproducible."""
import numpy as np
import pytest

from synthfarm.addon.core import effects
from synthfarm.addon.core.textures import TextureSetError, map_kind, read_texture_set


def scene(h=48, w=64):
    rng = np.random.default_rng(0)
    image = np.full((h, w, 3), 128, np.uint8)
    image[10:30, 20:40] = (200, 60, 30)
    return image + rng.integers(0, 3, image.shape).astype(np.uint8)


def test_no_effect_is_the_same_image():
    image = scene()
    assert effects.apply_effects(image, {}, np.random.default_rng(0)) is image


def test_gain_white_balance_and_vignetting():
    image = scene()
    rng = np.random.default_rng(0)
    assert effects.apply_effects(image, {"gain": 1.5}, rng).mean() == pytest.approx(image.mean() * 1.5, rel=0.02)
    balanced = effects.apply_effects(image, {"white_balance": [1.2, 1.0, 0.5]}, rng).astype(float)
    assert balanced[..., 0].mean() > image[..., 0].mean() * 1.15 and balanced[..., 2].mean() < image[..., 2].mean() * 0.55
    dark = effects.apply_effects(np.full((48, 64, 3), 200, np.uint8), {"vignetting": 0.5}, rng)
    assert dark[0, 0, 0] < 110 and dark[24, 32, 0] >= 199  # corners darker, centre kept


def test_blur_keeps_the_mean_and_smooths_edges():
    image = scene()
    blurred = effects.apply_effects(image, {"blur": 2.0}, np.random.default_rng(0)).astype(float)
    assert blurred.mean() == pytest.approx(image.mean(), abs=1.0)
    assert np.abs(np.diff(blurred, axis=1)).max() < np.abs(np.diff(image.astype(float), axis=1)).max() / 2


def test_motion_blur_streaks_along_its_angle():
    image = np.zeros((41, 41, 3), np.uint8)
    image[20, 20] = 255
    streak = effects.apply_effects(image, {"motion_blur": 10.0, "motion_angle": 0.0}, np.random.default_rng(0))
    rows, cols = np.nonzero(streak[..., 0])
    assert set(rows) <= {19, 20, 21} and cols.max() - cols.min() >= 8
    assert effects.line_kernel(10, 90).sum(axis=1).max() < 0.2  # vertical: spread over rows


def test_noise_is_drawn_from_the_stream_and_measured():
    flat = np.full((120, 160, 3), 100, np.uint8)
    a = effects.apply_effects(flat, {"noise": 0.02}, np.random.default_rng(7))
    b = effects.apply_effects(flat, {"noise": 0.02}, np.random.default_rng(7))
    assert np.array_equal(a, b)
    assert effects.noise_sigma(flat) == pytest.approx(0.0, abs=1e-6)
    assert effects.noise_sigma(a) == pytest.approx(0.02 * 255, rel=0.15)
    shot = effects.apply_effects(flat, {"photons": 100.0}, np.random.default_rng(1)).astype(float)
    assert shot.std() == pytest.approx(np.sqrt(100 / 255 * 100) / 100 * 255, rel=0.15)  # Poisson: sqrt(N)


def test_chromatic_shift_moves_red_and_blue_apart_at_the_corners():
    image = np.zeros((48, 64, 3), np.uint8)
    image[:, 4] = 255  # a white line near the left border
    shifted = effects.apply_effects(image, {"chromatic_shift": 3.0}, np.random.default_rng(0))
    red, green, blue = (np.argmax(shifted[24, :, c]) for c in range(3))
    assert red < green < blue


def test_jpeg_changes_pixels_a_little():
    image = scene()
    out = effects.apply_effects(image, {"jpeg_quality": 30}, np.random.default_rng(0))
    assert out.shape == image.shape and 0 < np.abs(out.astype(int) - image).mean() < 10


def test_backplate_covers_crops_and_goes_behind():
    plate = np.zeros((100, 50, 3), np.uint8)
    plate[:, :25] = 255
    crop = effects.cover_crop(plate, (64, 48), 1.0, (0.0, 0.5), False)
    assert crop.shape == (48, 64, 3) and crop[:, 0].min() == 255 and crop[:, -1].max() == 0
    assert effects.cover_crop(plate, (64, 48), 1.0, (0.0, 0.5), True)[:, 0].max() == 0  # mirrored
    rgba = np.zeros((48, 64, 4), np.uint8)
    rgba[10:20, 10:20] = (10, 20, 30, 255)
    out = effects.over(rgba, np.full((48, 64, 3), 99, np.uint8))
    assert (out[10:20, 10:20] == (10, 20, 30)).all() and (out[0, 0] == 99).all()


def test_clipped_fraction():
    image = np.full((10, 10, 3), 128, np.uint8)
    image[0, :5] = (255, 10, 10)
    image[1, :5] = (0, 0, 0)
    assert effects.clipped_fraction(image) == pytest.approx(0.1)


@pytest.mark.parametrize("name, kind", [
    ("Bricks076C_1K-JPG_Color.jpg", "color"), ("Bricks076C_1K-JPG_NormalGL.png", "normal_gl"),
    ("Bricks076C_1K-JPG_NormalDX.jpg", "normal_dx"), ("Metal012_2K_Metalness.jpg", "metalness"),
    ("Metal012_2K_Roughness.exr", "roughness"), ("Bricks_AmbientOcclusion.jpg", "ao"),
    ("Bricks_Displacement.exr", "displacement"), ("brick_wall_001_diff_1k.jpg", "color"),
    ("brick_wall_001_nor_gl_1k.exr", "normal_gl"), ("brick_wall_001_nor_dx_1k.png", "normal_dx"),
    ("metal_plate_rough_1k.jpg", "roughness"), ("metal_plate_metal_1k.jpg", "metalness"),
    ("metal_plate_arm_1k.jpg", "arm"), ("metal_plate_disp_4k.png", "displacement"), ("readme.txt", None)])
def test_texture_map_names(tmp_path, name, kind):
    assert map_kind(tmp_path / name) == kind


def test_a_texture_set_without_colour_is_named(tmp_path):
    (tmp_path / "Rock_Roughness.jpg").write_bytes(b"x")
    with pytest.raises(TextureSetError, match=f"{tmp_path}.*no colour map.*Rock_Roughness.jpg"):
        read_texture_set(tmp_path)
    (tmp_path / "Rock_Color.exr").write_bytes(b"x")
    (tmp_path / "Rock_Color.jpg").write_bytes(b"x")
    assert read_texture_set(tmp_path) == {"color": tmp_path / "Rock_Color.jpg",
                                          "roughness": tmp_path / "Rock_Roughness.jpg"}
