"""FID and KID of generated or reconstructed images against a fixed real image set, and the
record an evaluation yields. Every FID/KID name carries its sample count ("rFID@200"): FID is
biased upward for small N and only comparable between equal N. Inception features of real
reference sets are cached on disk by `metrics/reference_stats.py` under a key of dataset, split,
image size, N and the sha256 of the Inception weights, so a reference set costs Inception time
once."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from unified_latents.data.containers import Split
from unified_latents.data.datasets import DataConfig, heldout_images, load_split
from unified_latents.metrics.frechet import frechet_distance_of_features
from unified_latents.metrics.inception import InceptionFeatures
from unified_latents.metrics.kid import kernel_inception_distance
from unified_latents.metrics.reference_stats import (
    cache_path,
    cached_reference_features,
    cached_reference_statistics,
    reference_key,
)

KID_SUBSET_SIZE = 1000  # the reference implementations' defaults: 100 subsets of 1000
KID_SUBSETS = 100


class EvaluationError(RuntimeError):
    """An evaluation that cannot run as asked (N < 2 for FID, Inception weights missing, ...)."""


@dataclass
class Evaluation:
    """The outcome of evaluating one run; `commands/evaluate.py` writes it out."""

    metrics: dict[str, float]  # FID/KID names carry @N
    flops: dict[str, float]  # per image / per sample
    seconds: dict[str, float]  # wall time of each part
    notes: dict[str, str]  # what each metric compares against, or why it was skipped
    grid: Tensor  # uint8 [M, C, H, W] for the picture
    grid_columns: int
    grid_name: str = "samples"  # saved as eval/<grid_name>.png
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # saved as eval/*.npz
    # further pictures, saved as eval/<name>.png: name → (uint8 [M, C, H, W], columns)
    more_grids: dict[str, tuple[Tensor, int]] = field(default_factory=dict)


def load_extractor(path: Path | None, device: torch.device) -> InceptionFeatures:
    """The FID Inception network, or an EvaluationError saying how to install it."""
    try:
        return InceptionFeatures(path, device)
    except FileNotFoundError as error:
        raise EvaluationError(str(error)) from None


@dataclass(frozen=True)
class RealImages:
    """A fixed real image set: the first N images of one split of a dataset."""

    data: DataConfig
    split: Split
    images: Tensor  # uint8 [N, C, H, W]

    def describe(self) -> str:
        return f"the first {self.images.shape[0]} images of the {self.data.name} {self.split} split"

    def cache_key(self, extractor: InceptionFeatures) -> dict[str, Any]:
        dataset = f"{self.data.name}:{self.data.root}" if self.data.root else self.data.name
        key = reference_key(
            dataset, self.split, self.data.image_size, self.images.shape[0], extractor.fingerprint
        )
        return {**key, "channels": self.data.channels}


def real_images(data: DataConfig, split: Split, num: int) -> tuple[RealImages, Tensor]:
    """The first `num` images of `split` (fewer if the split is smaller) and their labels."""
    images, labels = heldout_images(load_split(data, split), num)
    return RealImages(data, split, images), labels


def inception_distances(
    prefix: str,
    images: Tensor,
    real: RealImages,
    extractor: InceptionFeatures,
    *,
    cache_dir: Path | None,
    seed: int,
    progress: bool = True,
) -> tuple[dict[str, float], dict[str, str], dict[str, float]]:
    """`{prefix}FID@N` and `{prefix}KID@N` of uint8 `images` against `real` (reference features
    cached on disk). Returns (metrics, notes, seconds)."""
    num, num_real = images.shape[0], real.images.shape[0]
    if num < 2 or num_real < 2:
        raise EvaluationError(f"FID/KID need at least 2 images per set, got {num} and {num_real}")
    start = time.perf_counter()
    features = extractor.features(images, progress=progress)
    seconds = {"inception_images": time.perf_counter() - start}
    key = real.cache_key(extractor)
    path = cache_path(key, cache_dir)
    was_cached = path.is_file()
    start = time.perf_counter()
    reference = cached_reference_features(
        key, lambda: extractor.features(real.images, progress=progress), cache_dir
    )
    statistics = cached_reference_statistics(key, lambda: reference, cache_dir)
    seconds["inception_reference"] = time.perf_counter() - start
    start = time.perf_counter()
    fid_name, kid_name = f"{prefix}FID@{num}", f"{prefix}KID@{num}"
    fid = frechet_distance_of_features(features, reference, statistics)
    size = min(KID_SUBSET_SIZE, num, num_real)
    # Subsets that take every row of both sets are all the same estimate: compute it once.
    subsets = 1 if size == num == num_real else KID_SUBSETS
    kid = kernel_inception_distance(
        features, reference, num_subsets=subsets, subset_size=size, seed=seed
    )
    metrics = {fid_name: fid, kid_name: kid.mean}
    if subsets > 1:
        metrics[f"{kid_name}_std"] = kid.std
    seconds["fid_kid_math"] = time.perf_counter() - start
    origin = "read from" if was_cached else "computed and stored in"
    reference_text = (
        f"Inception (sha256 {extractor.fingerprint[:12]}…) features of {real.describe()}; "
        f"reference statistics {origin} {path}"
    )
    spread = f"; mean ± std over {subsets} subsets of {size}" if subsets > 1 else ""
    notes = {fid_name: reference_text, kid_name: f"{reference_text}{spread}"}
    return metrics, notes, seconds
