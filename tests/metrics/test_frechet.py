"""Fréchet distance against closed forms and an independent sqrtm route."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from unified_latents.metrics.frechet import (
    Statistics,
    frechet_distance,
    statistics_from_features,
    trace_sqrt_product,
)


def _random_statistics(dim: int, num: int, seed: int) -> Statistics:
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    return statistics_from_features(rng.standard_normal((num, dim)) @ mixing + rng.normal(size=dim))


def test_statistics_are_sample_mean_and_unbiased_covariance() -> None:
    features = np.random.default_rng(0).standard_normal((50, 6))
    stats = statistics_from_features(features)
    centred = features - features.mean(axis=0)
    np.testing.assert_allclose(stats.mean, features.mean(axis=0))
    np.testing.assert_allclose(stats.cov, centred.T @ centred / 49)
    assert stats.num == 50
    with pytest.raises(ValueError):
        statistics_from_features(features[:1])


def test_identical_statistics_have_zero_distance() -> None:
    stats = _random_statistics(dim=64, num=500, seed=1)
    assert abs(frechet_distance(stats, stats)) < 1e-6


def test_identical_singular_statistics_have_zero_distance() -> None:
    # Fewer samples than dimensions gives a rank-deficient covariance, as with small FID sets.
    stats = _random_statistics(dim=64, num=20, seed=2)
    assert np.linalg.matrix_rank(stats.cov) < 64
    assert abs(frechet_distance(stats, stats)) < 1e-6


def test_diagonal_gaussians_match_the_closed_form() -> None:
    rng = np.random.default_rng(3)
    mean_a, mean_b = rng.normal(size=10), rng.normal(size=10)
    var_a, var_b = rng.uniform(0.1, 2.0, size=10), rng.uniform(0.1, 2.0, size=10)
    a = Statistics(mean_a, np.diag(var_a), num=1)
    b = Statistics(mean_b, np.diag(var_b), num=1)
    # Σ(μ1 − μ2)² + Σ(s1 + s2 − 2√(s1·s2)) for variances s.
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum(var_a + var_b - 2 * np.sqrt(var_a * var_b))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_mean_shift_with_equal_covariance_adds_squared_distance() -> None:
    stats = _random_statistics(dim=32, num=10, seed=4)  # singular covariance on purpose
    shift = np.linspace(-1.0, 1.0, 32)
    shifted = Statistics(stats.mean + shift, stats.cov, stats.num)
    assert frechet_distance(stats, shifted) == pytest.approx(np.sum(shift**2), abs=1e-6)


def test_full_covariances_match_scipy_sqrtm_of_the_product() -> None:
    a, b = _random_statistics(16, 200, seed=5), _random_statistics(16, 300, seed=6)
    sqrt_product = scipy.linalg.sqrtm(a.cov @ b.cov)
    assert trace_sqrt_product(a.cov, b.cov) == pytest.approx(np.trace(sqrt_product).real, rel=1e-8)
    expected = (
        np.sum((a.mean - b.mean) ** 2)
        + np.trace(a.cov)
        + np.trace(b.cov)
        - 2 * np.trace(sqrt_product).real
    )
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-8)


def test_non_covariance_input_is_rejected() -> None:
    not_psd = Statistics(np.zeros(2), np.diag([1.0, -1.0]), num=2)
    with pytest.raises(ValueError, match="positive semi-definite"):
        frechet_distance(not_psd, not_psd)
