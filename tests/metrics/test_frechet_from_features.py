"""The feature-space route to the Fréchet distance agrees with the covariance route."""

from __future__ import annotations

import numpy as np
import pytest

from unified_latents.metrics.frechet import (
    frechet_distance,
    frechet_distance_from_features,
    frechet_distance_of_features,
    statistics_from_features,
)


@pytest.mark.parametrize(("n", "m", "dim"), [(2, 2, 5), (10, 7, 64), (80, 50, 16), (30, 30, 300)])
def test_matches_the_covariance_route(n: int, m: int, dim: int) -> None:
    # Covers fewer samples than dimensions (singular covariances) and more (full rank).
    rng = np.random.default_rng(n * 1000 + m)
    a = rng.standard_normal((n, dim))
    b = 1.5 * rng.standard_normal((m, dim)) @ rng.standard_normal((dim, dim)) / dim**0.5 + 0.3
    expected = frechet_distance(statistics_from_features(a), statistics_from_features(b))
    assert frechet_distance_from_features(a, b) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_identical_sets_are_at_distance_zero() -> None:
    features = np.random.default_rng(0).standard_normal((12, 40))
    assert frechet_distance_from_features(features, features) == pytest.approx(0.0, abs=1e-9)


def test_rejects_mismatched_or_too_few_features() -> None:
    with pytest.raises(ValueError, match="dimensions differ"):
        frechet_distance_from_features(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="N ≥ 2"):
        frechet_distance_from_features(np.zeros((1, 4)), np.zeros((3, 4)))


@pytest.mark.parametrize(("n", "m"), [(10, 12), (40, 50)])  # fewer, then more samples than D = 20
def test_either_route_gives_the_same_value_and_uses_given_statistics(n: int, m: int) -> None:
    rng = np.random.default_rng(n)
    a, b = rng.standard_normal((n, 20)), 0.5 + rng.standard_normal((m, 20))
    expected = frechet_distance(statistics_from_features(a), statistics_from_features(b))
    assert frechet_distance_of_features(a, b) == pytest.approx(expected, rel=1e-9)
    # Given statistics stand for the reference on the covariance route (a cache is trusted).
    other = statistics_from_features(b + 1.0)
    expected_given = frechet_distance(statistics_from_features(a), other) if n >= 20 else expected
    assert frechet_distance_of_features(a, b, other) == pytest.approx(expected_given, rel=1e-9)
