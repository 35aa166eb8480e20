"""Compare two image sets (synthfarm datasets or folders of real images): sample, embed with a feature
extractor, measure how far apart they are, and map them in 2-D on a page.

    >>> from synthfarm.addon.core.compare import compare
    >>> result = compare("out/toybox", "photos/", out="out/compare")      # hand-crafted features, UMAP
    >>> result.frechet, result.kernel, result.page
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .distances import frechet_distance, kernel_distance
from .features import FeatureExtractor, HandcraftedFeatures, OnnxFeatures, extractor
from .images import CompareError, image_files, load, sample, thumbnail
from .page import write_page

PROJECTIONS = ("umap", "tsne", "pca")

__all__ = ["CompareError", "Comparison", "FeatureExtractor", "HandcraftedFeatures", "OnnxFeatures", "compare",
           "extractor", "frechet_distance", "kernel_distance", "project"]


@dataclass
class Comparison:
    page: Path
    features: str  # what the distances were measured on
    sizes: tuple[int, int]  # images sampled from each set
    frechet: float
    kernel: tuple[float, float]  # mean and spread over subsets
    # for scale, at one size (half the first set): its two halves, and one half against the second set
    reference_size: int
    within: tuple[float, float]  # (Fréchet, kernel) between the two halves of the first set
    between: tuple[float, float]  # (Fréchet, kernel) between a half of the first set and the second set


def compare(a: str | Path, b: str | Path, out: str | Path, *, samples: int = 200,
            features: FeatureExtractor | str = "handcrafted", projection: str = "umap", seed: int = 0) -> Comparison:
    """Sample up to ``samples`` images of each set, embed them, measure the distances and write the page."""
    if projection not in PROJECTIONS:
        raise CompareError(f"projection {projection!r}: use one of {', '.join(PROJECTIONS)}")
    extract = extractor(features) if isinstance(features, str) else features
    out = Path(out)
    (out / "thumbs").mkdir(parents=True, exist_ok=True)
    (out / "previews").mkdir(exist_ok=True)
    names = (Path(a).resolve().name, Path(b).resolve().name)
    picked = [sample(image_files(Path(src)), samples, seed) for src in (a, b)]
    if min(len(p) for p in picked) < 4:
        raise CompareError(f"each set needs at least 4 images; {names[0]} has {len(picked[0])}, "
                           f"{names[1]} has {len(picked[1])}")
    vectors, labels, thumbs, previews = [], [], [], []
    for group, (name, files) in enumerate(zip(names, picked)):
        images = [load(p) for p in files]
        vectors.append(extract(images))
        for i, (path, image) in enumerate(zip(files, images)):
            key = f"{group}-{i:05d}.jpg"
            thumbnail(image, 160).save(out / "thumbs" / key, quality=85)
            thumbnail(image, 640).save(out / "previews" / key, quality=90)
            labels.append(f"{name}: {path.name}")
            thumbs.append(f"thumbs/{key}")
            previews.append(f"previews/{key}")
    first, second = vectors
    rng = np.random.default_rng(seed)
    order, size = rng.permutation(len(first)), min(len(first) // 2, len(second))
    one, two, other = first[order[:size]], first[order[size:2 * size]], second[rng.permutation(len(second))[:size]]
    result = Comparison(page=out / "index.html", features=f"{extract.name}: {extract.description}", sizes=(len(first), len(second)),
                        frechet=frechet_distance(first, second), kernel=kernel_distance(first, second, seed=seed),
                        reference_size=size, within=_pair(one, two, seed), between=_pair(one, other, seed))
    groups = np.repeat([0, 1], [len(first), len(second)])
    points = project(np.concatenate([first, second]), projection, seed)
    rows = [("images", f"{names[0]}: {result.sizes[0]}, {names[1]}: {result.sizes[1]} (sampled with seed {seed})"),
            ("Fréchet distance", f"{result.frechet:.4g}"),
            ("kernel distance (KID, unbiased MMD²)", f"{result.kernel[0]:.4g} ± {result.kernel[1]:.2g}"),
            (f"at {size} images each: two halves of {names[0]}",
             f"Fréchet {result.within[0]:.4g}, kernel {result.within[1]:.4g}"),
            (f"at {size} images each: {names[0]} vs {names[1]}",
             f"Fréchet {result.between[0]:.4g}, kernel {result.between[1]:.4g}")]
    write_page(out, names=names, points=points, groups=groups, labels=labels, thumbs=thumbs, previews=previews,
               rows=rows, features=result.features, projection=projection)
    return result


def _pair(a: np.ndarray, b: np.ndarray, seed: int) -> tuple[float, float]:
    return frechet_distance(a, b), kernel_distance(a, b, seed=seed)[0]


def project(vectors: np.ndarray, method: str = "umap", seed: int = 0) -> np.ndarray:
    """2-D coordinates of feature vectors (as they are: the distances use the same), by UMAP (umap-learn),
    t-SNE or PCA (scikit-learn)."""
    scaled = np.asarray(vectors, dtype=np.float64)
    n = len(scaled)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(scaled)
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(n_components=2, perplexity=max(2.0, min(30.0, (n - 1) / 3)), init="pca",
                    random_state=seed).fit_transform(scaled)
    import umap

    return umap.UMAP(n_components=2, n_neighbors=max(2, min(15, n - 1)), random_state=seed).fit_transform(scaled)
