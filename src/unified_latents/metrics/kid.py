"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with a cubic kernel.

k(x, y) = (x·y / d + 1)³ on d-dimensional features. Unlike FID it has an unbiased estimator, so
it is comparable across sample sizes; it is averaged over random equal-size subsets to bound the
O(m²) kernel cost, and the spread over subsets is reported as its standard deviation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class KernelDistance(NamedTuple):
    """Mean and standard deviation of the subset MMD² estimates."""

    mean: float
    std: float


def polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a·bᵀ / d + 1)³ for features a [m, d], b [n, d] → [m, n]."""
    dim = a.shape[1]
    return (a @ b.T / dim + 1.0) ** 3


def unbiased_mmd2(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased MMD² estimate between samples a [m, d] and b [n, d] (Gretton et al. 2012, eq. 3).

    Within-sample sums leave out the diagonal (k(x, x) terms), which is what makes it unbiased;
    the estimate can therefore be slightly negative when the distributions are equal.
    """
    m, n = a.shape[0], b.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"need at least 2 samples per set, got {m} and {n}")
    k_aa, k_bb, k_ab = polynomial_kernel(a, a), polynomial_kernel(b, b), polynomial_kernel(a, b)
    within_a = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
    within_b = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    return float(within_a + within_b - 2.0 * k_ab.mean())


def kernel_inception_distance(
    features_a: np.ndarray,
    features_b: np.ndarray,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> KernelDistance:
    """KID between two feature sets [N_a, d] and [N_b, d], averaged over seeded random subsets.

    Each subset draws `subset_size` rows without replacement from each set (capped at the
    smaller set's size, as the reference implementations do).
    """
    features_a = np.asarray(features_a, dtype=np.float64)
    features_b = np.asarray(features_b, dtype=np.float64)
    if features_a.shape[1] != features_b.shape[1]:
        raise ValueError(f"feature dims differ: {features_a.shape} vs {features_b.shape}")
    size = min(subset_size, features_a.shape[0], features_b.shape[0])
    rng = np.random.default_rng(seed)
    estimates = np.empty(num_subsets)
    for index in range(num_subsets):
        rows_a = rng.choice(features_a.shape[0], size, replace=False)
        rows_b = rng.choice(features_b.shape[0], size, replace=False)
        estimates[index] = unbiased_mmd2(features_a[rows_a], features_b[rows_b])
    return KernelDistance(mean=float(estimates.mean()), std=float(estimates.std()))
