"""Distances between two sets of feature vectors: the Fréchet distance (as in FID, between Gaussians fitted
to each set) and the kernel distance (as in KID: the unbiased squared MMD with the cubic polynomial kernel,
averaged over random subsets, with its spread). Both are 0 for identical distributions; KID is unbiased for
small sets, FID is not (it shrinks as the sets grow), so compare FIDs only at equal set sizes."""
from __future__ import annotations

import numpy as np


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^1/2), the trace of the root taken as the sum of
    the square roots of the eigenvalues of S_a^1/2 S_b S_a^1/2 (symmetric, so stable when the covariances are
    singular, as they are with fewer images than features)."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0, None)).sum()
    return float(max(0.0, ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * cross))


def kernel_distance(a: np.ndarray, b: np.ndarray, subsets: int = 50, subset_size: int | None = None,
                    seed: int = 0) -> tuple[float, float]:
    """(mean, standard deviation) of the unbiased MMD^2 over ``subsets`` random subsets of both sets, of
    ``subset_size`` images each (default: half the smaller set, at most 100, so that the subsets differ)."""
    rng = np.random.default_rng(seed)
    size = min(subset_size or min(100, max(2, min(len(a), len(b)) // 2)), len(a), len(b))
    if size < 2:
        raise ValueError("the kernel distance needs at least two images in each set")
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), size, replace=False)]
        y = b[rng.choice(len(b), size, replace=False)]
        values.append(_mmd2(x, y))
    return float(np.mean(values)), float(np.std(values))


def _mmd2(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
    m = len(x)
    return float((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())
