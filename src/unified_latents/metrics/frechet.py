"""Fréchet distance between Gaussians fitted to features (FID when the features are Inception's).

FID = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2·tr (Σ₁Σ₂)^{1/2}   (Heusel et al. 2017).

tr (Σ₁Σ₂)^{1/2} is computed as Σᵢ √λᵢ with λᵢ the eigenvalues of the *symmetric* PSD matrix
Σ₁^{1/2} Σ₂ Σ₁^{1/2}, which is similar to Σ₁Σ₂. That route needs only `eigh`, stays real, and does
not break down when the covariances are singular (fewer samples than feature dimensions), which
is where `scipy.linalg.sqrtm(Σ₁Σ₂)` needs the usual ε·I offset and returns complex round-off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Eigenvalues of a PSD matrix computed in float64 can come out slightly negative from round-off.
# Anything more negative than this fraction of the largest eigenvalue means the input was not a
# covariance matrix, which we report instead of silently clipping.
_NEGATIVE_EIGENVALUE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Statistics:
    """Mean [D] and covariance [D, D] (float64) of `num` feature vectors."""

    mean: np.ndarray
    cov: np.ndarray
    num: int

    def __post_init__(self) -> None:
        dim = self.mean.shape[0]
        if self.mean.ndim != 1 or self.cov.shape != (dim, dim):
            raise ValueError(f"mean {self.mean.shape} and cov {self.cov.shape} do not match")


def statistics_from_features(features: np.ndarray) -> Statistics:
    """Sample mean and unbiased (N − 1) covariance of features [N, D], as pytorch-fid does."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need features [N ≥ 2, D], got shape {features.shape}")
    return Statistics(
        mean=features.mean(axis=0),
        cov=np.cov(features, rowvar=False),
        num=int(features.shape[0]),
    )


def _symmetric(matrix: np.ndarray) -> np.ndarray:
    return 0.5 * (matrix + matrix.T)  # drop asymmetric round-off before a symmetric solver


def _clean_psd_eigenvalues(eigenvalues: np.ndarray, name: str) -> np.ndarray:
    """Eigenvalues of a PSD matrix with round-off (negative or tiny) values set to exactly 0."""
    scale = max(float(np.abs(eigenvalues).max(initial=0.0)), np.finfo(np.float64).tiny)
    if eigenvalues.min(initial=0.0) < -_NEGATIVE_EIGENVALUE_TOLERANCE * scale:
        smallest = eigenvalues.min()
        raise ValueError(f"{name} is not positive semi-definite (eigenvalue {smallest:.3g})")
    # Below D·ε·λ_max an eigenvalue is round-off (numpy's matrix_rank tolerance). Zero it: the
    # square roots taken next would turn each ~1e-16 into ~1e-8 and singular covariances (N < D)
    # would then miss FID = 0 for identical statistics by ~1e-6.
    rank_tolerance = eigenvalues.shape[0] * np.finfo(np.float64).eps * scale
    return np.where(eigenvalues > rank_tolerance, eigenvalues, 0.0)


def trace_sqrt_product(cov_a: np.ndarray, cov_b: np.ndarray) -> float:
    """tr (Σ_a Σ_b)^{1/2} for PSD Σ_a, Σ_b via the symmetric form Σ_a^{1/2} Σ_b Σ_a^{1/2}."""
    eigenvalues_a, eigenvectors_a = np.linalg.eigh(_symmetric(cov_a))
    eigenvalues_a = _clean_psd_eigenvalues(eigenvalues_a, "cov_a")
    sqrt_a = (eigenvectors_a * np.sqrt(eigenvalues_a)) @ eigenvectors_a.T
    # Only the eigenvalues of the product are needed: eigvalsh is ~2-3× faster than eigh at D=2048.
    eigenvalues = np.linalg.eigvalsh(_symmetric(sqrt_a @ cov_b @ sqrt_a))
    return float(np.sqrt(_clean_psd_eigenvalues(eigenvalues, "Σ_a^½ Σ_b Σ_a^½")).sum())


def frechet_distance(a: Statistics, b: Statistics) -> float:
    """‖μ_a − μ_b‖² + tr Σ_a + tr Σ_b − 2·tr (Σ_a Σ_b)^{1/2}; ≥ 0 up to round-off."""
    if a.mean.shape != b.mean.shape:
        raise ValueError(f"feature dimensions differ: {a.mean.shape} vs {b.mean.shape}")
    mean_a, mean_b = a.mean.astype(np.float64), b.mean.astype(np.float64)
    cov_a, cov_b = a.cov.astype(np.float64), b.cov.astype(np.float64)
    mean_term = float(np.sum((mean_a - mean_b) ** 2))
    trace_term = float(np.trace(cov_a) + np.trace(cov_b))
    return mean_term + trace_term - 2.0 * trace_sqrt_product(cov_a, cov_b)


def frechet_distance_from_features(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """`frechet_distance` of the Gaussians fitted to features [n, D] and [m, D], without D × D
    matrices: O(n·m·D) instead of O(D³), the fast route when n, m < D (e.g. FID@200 on 2048-d
    Inception features: milliseconds instead of two 2048² eigendecompositions).

    With centred features A [n, D], B [m, D]: Σ_a = AᵀA/(n−1), tr Σ_a = ‖A‖²_F/(n−1), and the
    non-zero eigenvalues of AᵀA·BᵀB equal those of (ABᵀ)(ABᵀ)ᵀ (XY and YX share them), so
    tr (Σ_a Σ_b)^{1/2} = Σ singular values of ABᵀ / √((n−1)(m−1)).
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError(f"need features [N ≥ 2, D], got shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    n, m = a.shape[0], b.shape[0]
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    centred_a, centred_b = a - mean_a, b - mean_b
    mean_term = float(np.sum((mean_a - mean_b) ** 2))
    trace_term = float(np.sum(centred_a**2) / (n - 1) + np.sum(centred_b**2) / (m - 1))
    singular_values = np.linalg.svd(centred_a @ centred_b.T, compute_uv=False)  # [min(n, m)]
    trace_sqrt = float(singular_values.sum()) / np.sqrt((n - 1) * (m - 1))
    return mean_term + trace_term - 2.0 * trace_sqrt


def frechet_distance_of_features(
    features: np.ndarray, reference: np.ndarray, reference_statistics: Statistics | None = None
) -> float:
    """`frechet_distance` between the Gaussians of features [n, D] and reference [m, D] by the
    cheaper route, the same value either way: from the features when n, m < D (no D × D
    matrices), else from the statistics (`reference_statistics` if given, e.g. cached)."""
    if max(len(features), len(reference)) < features.shape[1]:
        return frechet_distance_from_features(features, reference)
    if reference_statistics is None:
        reference_statistics = statistics_from_features(reference)
    return frechet_distance(statistics_from_features(features), reference_statistics)
