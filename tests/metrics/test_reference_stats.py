"""The reference-statistics cache: hits skip `compute`, keys separate entries, writes are atomic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from unified_latents.metrics.frechet import statistics_from_features
from unified_latents.metrics.reference_stats import (
    cache_path,
    cached_reference_features,
    cached_reference_statistics,
    default_cache_dir,
    reference_key,
)


class CountingFeatures:
    """A `compute` callable that records how often it ran."""

    def __init__(self, seed: int = 0) -> None:
        self.calls = 0
        self.features = np.random.default_rng(seed).standard_normal((40, 8))

    def __call__(self) -> np.ndarray:
        self.calls += 1
        return self.features


KEY = reference_key("mnist5k", "test", 8, 40, extractor_fingerprint="abc123")


def test_second_call_reads_the_cache_without_computing(tmp_path: Path) -> None:
    compute = CountingFeatures()
    first = cached_reference_statistics(KEY, compute, cache_dir=tmp_path)
    second = cached_reference_statistics(KEY, compute, cache_dir=tmp_path)
    assert compute.calls == 1
    expected = statistics_from_features(compute.features)
    for stats in (first, second):
        np.testing.assert_array_equal(stats.mean, expected.mean)
        np.testing.assert_array_equal(stats.cov, expected.cov)
        assert stats.num == 40


def test_a_different_key_misses_the_cache(tmp_path: Path) -> None:
    compute = CountingFeatures()
    cached_reference_statistics(KEY, compute, cache_dir=tmp_path)
    other = dict(KEY, extractor="another-network")
    assert cache_path(other, tmp_path) != cache_path(KEY, tmp_path)
    cached_reference_statistics(other, compute, cache_dir=tmp_path)
    assert compute.calls == 2


def test_key_order_does_not_matter(tmp_path: Path) -> None:
    reordered = dict(reversed(list(KEY.items())))
    assert cache_path(reordered, tmp_path) == cache_path(KEY, tmp_path)


def test_features_are_cached_for_kid(tmp_path: Path) -> None:
    compute = CountingFeatures()
    cached_reference_statistics(KEY, compute, cache_dir=tmp_path)
    features = cached_reference_features(KEY, compute, cache_dir=tmp_path)
    assert compute.calls == 1
    assert features.dtype == np.float32
    np.testing.assert_allclose(features, compute.features, rtol=1e-6)


def test_features_are_computed_once_if_statistics_were_stored_without_them(tmp_path: Path) -> None:
    compute = CountingFeatures()
    cached_reference_statistics(KEY, compute, cache_dir=tmp_path, store_features=False)
    cached_reference_features(KEY, compute, cache_dir=tmp_path)
    cached_reference_features(KEY, compute, cache_dir=tmp_path)
    assert compute.calls == 2


def test_only_the_final_file_remains(tmp_path: Path) -> None:
    cached_reference_statistics(KEY, CountingFeatures(), cache_dir=tmp_path)
    assert [path.name for path in tmp_path.iterdir()] == [cache_path(KEY, tmp_path).name]


def test_a_failing_compute_leaves_no_file(tmp_path: Path) -> None:
    def broken() -> np.ndarray:
        raise RuntimeError("no data")

    with pytest.raises(RuntimeError):
        cached_reference_statistics(KEY, broken, cache_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_default_cache_dir_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UL_CACHE_DIR", str(tmp_path))
    assert default_cache_dir().parent == tmp_path
    compute = CountingFeatures()
    cached_reference_statistics(KEY, compute)
    cached_reference_statistics(KEY, compute)
    assert compute.calls == 1
    assert cache_path(KEY).is_file()
    monkeypatch.delenv("UL_CACHE_DIR")
    assert default_cache_dir().parent == Path.home() / ".cache" / "unified-latents"
