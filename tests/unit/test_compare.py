"""Comparing image sets: features, distances, projections, and the ONNX extractor on a model built here."""
import numpy as np
import pytest
import yaml
from PIL import Image

from image_sets import make_set
from synthfarm.addon.core.compare import (CompareError, HandcraftedFeatures, OnnxFeatures, compare, extractor,
                                          frechet_distance, kernel_distance, project)
from synthfarm.addon.core.compare.images import image_files


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    return (make_set(root / "bright", 60, seed=1), make_set(root / "dark", 60, seed=2, brightness=0.45),
            make_set(root / "bright-again", 60, seed=3))


def test_sets_that_differ_in_brightness_are_farther_apart_than_halves_of_one(sets, tmp_path):
    bright, dark, _ = sets
    result = compare(bright, dark, tmp_path / "page", samples=60, projection="pca")
    assert result.sizes == (60, 60) and result.reference_size == 30
    assert result.between[0] > 1.2 * result.within[0]  # Fréchet, at equal sizes
    assert result.between[1] > 5 * abs(result.within[1]) and result.kernel[0] > 5 * result.kernel[1]
    assert result.features.startswith("handcrafted: HSV colour histogram")
    page = result.page.read_text()
    assert page.count('class="pt"') == 120 and "Fréchet distance" in page and "handcrafted: HSV colour histogram" in page
    assert len(list((tmp_path / "page" / "thumbs").glob("*.jpg"))) == 120


def test_two_sets_from_one_generator_are_close(sets, tmp_path):
    bright, dark, again = sets
    features = HandcraftedFeatures()
    load = [[Image.open(p).convert("RGB") for p in image_files(s)] for s in (bright, dark, again)]
    a, d, b = (features(images) for images in load)
    assert a.shape == (60, 224) and np.allclose(np.linalg.norm(a[:, :72], axis=1), 1)
    assert frechet_distance(a, b) < frechet_distance(a, d) / 1.2
    assert kernel_distance(a, b)[0] < kernel_distance(a, d)[0] / 5
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)


def test_distances_match_their_definitions():
    from scipy import linalg

    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (400, 2)), rng.normal([3, 0], 1, (400, 2))
    assert frechet_distance(a, b) == pytest.approx(9, rel=0.1)  # means 3 apart, equal covariances
    x, y = rng.normal(size=(300, 5)), rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5)) + 1
    cx, cy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)  # against scipy's matrix square root
    expected = ((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(cx + cy) - 2 * np.trace(linalg.sqrtm(cx @ cy).real)
    assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-9)
    assert abs(kernel_distance(a, rng.normal(0, 1, (400, 2)))[0]) < 0.05 < kernel_distance(a, b)[0]


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
def test_projections_keep_apart_sets_the_features_tell_apart(tmp_path, method):
    # Sets far enough apart that the features themselves tell them apart (nearly every image's nearest
    # neighbours are of its own set); at 0.45x brightness they barely do, and whether a projection then
    # shows two groups depends on the library's version, not on our code.
    bright, dark = make_set(tmp_path / "bright", 20, seed=1), make_set(tmp_path / "dark", 20, seed=2, brightness=0.2)
    vectors = HandcraftedFeatures()([Image.open(p) for p in image_files(bright) + image_files(dark)])
    assert _same_set_neighbours(vectors) > 0.85
    points = project(vectors, method, seed=0)
    assert points.shape == (40, 2) and np.isfinite(points).all()
    assert _same_set_neighbours(points) > 0.8  # neighbours in the map are mostly of the same set
    mid_a, mid_b = points[:20].mean(axis=0), points[20:].mean(axis=0)  # and the two groups lie apart
    assert np.linalg.norm(mid_a - mid_b) > 1.2 * points.std(axis=0).mean()


def _same_set_neighbours(points, k=5):
    """The share of each point's k nearest neighbours that belong to its own set (first half, second half)."""
    gaps = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.fill_diagonal(gaps, np.inf)
    first_half = np.arange(len(points)) < len(points) // 2
    nearest = np.argsort(gaps, axis=1)[:, :k]
    return (first_half[nearest] == first_half[:, None]).mean()


def test_a_dataset_contributes_its_rendered_images_only(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "dataset.yaml").write_text(yaml.safe_dump({"name": "x"}))
    for folder in ("images", "masks"):
        Image.new("RGB", (4, 4)).save(tmp_path / folder / "0000000000-0000-cam.png")
    assert image_files(tmp_path) == [tmp_path / "images" / "0000000000-0000-cam.png"]
    with pytest.raises(CompareError, match="holds no images"):
        image_files(make_empty(tmp_path / "empty"))


def make_empty(folder):
    folder.mkdir()
    (folder / "notes.txt").write_text("no pictures here")
    return folder


def test_bad_feature_specs_are_refused_with_the_fix(tmp_path):
    with pytest.raises(CompareError, match="use 'handcrafted' or 'onnx:"):
        extractor("resnet")
    with pytest.raises(CompareError, match="does not exist; export one"):
        extractor(f"onnx:{tmp_path / 'missing.onnx'}")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(CompareError, match="not a model onnxruntime can run"):
        OnnxFeatures(broken)


def test_onnx_features_run_a_model_with_the_documented_preprocessing(tmp_path, sets):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.zeros((4, 3, 1, 1), np.float32)  # a 1x1 convolution: channels 0-2 copied, 3 = their sum
    weight[0, 0] = weight[1, 1] = weight[2, 2] = 1
    weight[3, :, 0, 0] = 1
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["conv"]), helper.make_node("GlobalAveragePool", ["conv"], ["pool"])],
        "features", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("pool", TensorProto.FLOAT, ["batch", 4, 1, 1])],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    path = tmp_path / "tiny.onnx"
    onnx.save(model, path)
    extract = extractor(f"onnx:{path}")
    assert extract.size == 32 and extract.name == "onnx:tiny.onnx"
    images = [Image.open(p).convert("RGB") for p in image_files(sets[0])[:5]]
    got = extract(images)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    for image, row in zip(images, got):
        pixels = np.asarray(image.resize((32, 32), Image.Resampling.BILINEAR), np.float32) / 255.0
        channels = ((pixels - mean) / std).mean(axis=(0, 1))
        assert np.allclose(row, [*channels, channels.sum()], atol=1e-4)
