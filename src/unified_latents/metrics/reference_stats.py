"""On-disk cache of reference-set Inception statistics (and features, for KID).

Reference statistics cost minutes to hours of Inception time on a CPU and never change for a given
(data set, split, image size, number of images, feature extractor), so they are computed once and
stored as `.npz` under a file name that hashes exactly those facts. Writes go to a temporary file
in the same directory followed by an atomic rename, so concurrent runs and interrupted writes never
leave a half-written cache file behind.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from unified_latents.metrics.frechet import Statistics, statistics_from_features

CACHE_DIR_ENV = "UL_CACHE_DIR"
CACHE_SUBDIR = "reference-stats"


def default_cache_dir() -> Path:
    """`$UL_CACHE_DIR/reference-stats`, else `~/.cache/unified-latents/reference-stats`."""
    root = os.environ.get(CACHE_DIR_ENV)
    base = Path(root) if root else Path.home() / ".cache" / "unified-latents"
    return base / CACHE_SUBDIR


def reference_key(
    dataset: str, split: str, image_size: int, num_images: int, extractor_fingerprint: str
) -> dict[str, Any]:
    """The facts that determine reference statistics; any change must miss the cache."""
    return {
        "dataset": dataset,
        "split": split,
        "image_size": image_size,
        "num_images": num_images,
        "extractor": extractor_fingerprint,
    }


def _canonical_json(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)


def cache_path(key: dict[str, Any], cache_dir: Path | None = None) -> Path:
    """Where the entry for `key` lives: `<cache_dir>/ref-<sha256 of the key's JSON>[:24].npz`."""
    digest = hashlib.sha256(_canonical_json(key).encode()).hexdigest()[:24]
    return (cache_dir if cache_dir is not None else default_cache_dir()) / f"ref-{digest}.npz"


def _write_atomically(path: Path, arrays: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            np.savez(handle, **arrays)  # a file object, so numpy adds no ".npz" suffix
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)  # atomic within one file system
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _read_entry(path: Path, key: dict[str, Any], need_features: bool) -> dict[str, Any] | None:
    """The stored arrays if `path` holds this exact key (and features when needed), else None."""
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as stored:
        if str(stored["key"]) != _canonical_json(key):
            return None  # a hash-prefix collision or a foreign file: treat as a miss
        if need_features and "features" not in stored.files:
            return None
        names = ["mean", "cov", "num"] + (["features"] if need_features else [])
        return {name: stored[name] for name in names}


def _compute_and_store(
    path: Path, key: dict[str, Any], compute: Callable[[], np.ndarray], store_features: bool
) -> dict[str, Any]:
    features = np.asarray(compute())
    statistics = statistics_from_features(features)
    entry: dict[str, Any] = {
        "mean": statistics.mean,
        "cov": statistics.cov,
        "num": np.asarray(statistics.num),
    }
    if store_features:
        # float32 halves the size (N × 2048 × 4 bytes); KID needs no more precision than that.
        entry["features"] = features.astype(np.float32)
    _write_atomically(path, {**entry, "key": np.asarray(_canonical_json(key))})
    entry["features"] = features  # callers of this run get the unrounded features
    return entry


def _entry(
    key: dict[str, Any],
    compute: Callable[[], np.ndarray],
    cache_dir: Path | None,
    store_features: bool,
    need_features: bool,
) -> dict[str, Any]:
    path = cache_path(key, cache_dir)
    cached = _read_entry(path, key, need_features)
    if cached is not None:
        return cached
    return _compute_and_store(path, key, compute, store_features or need_features)


def cached_reference_statistics(
    key: dict[str, Any],
    compute: Callable[[], np.ndarray],
    cache_dir: Path | None = None,
    store_features: bool = True,
) -> Statistics:
    """Reference statistics for `key`, calling `compute() -> features [N, D]` only on a miss.

    `key` should hold what `reference_key` lists. With `store_features` the raw features are kept
    in the same file so `cached_reference_features` (KID) does not rerun Inception.
    """
    entry = _entry(key, compute, cache_dir, store_features, need_features=False)
    return Statistics(mean=entry["mean"], cov=entry["cov"], num=int(entry["num"]))


def cached_reference_features(
    key: dict[str, Any], compute: Callable[[], np.ndarray], cache_dir: Path | None = None
) -> np.ndarray:
    """Reference features [N, D] for `key` (float32 when read back from the cache)."""
    return _entry(key, compute, cache_dir, store_features=True, need_features=True)["features"]


def file_sha256(path: Path) -> str:
    """sha256 of a (weights) file, read in 1 MiB blocks: part of every cache key of features."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class WeightsFile:
    """A feature network read from its weights file `path`, which fingerprints its features."""

    path: Path

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 of the weights file: part of every cache key built from these features."""
        return file_sha256(self.path)
