"""What `ul evaluate` measures on a trained autoencoder run, and the pieces shared with base runs.

Autoencoder (UL-SPEC §5–§7, §10): rFID@N and rKID@N of N reconstructions against the *same N
held-out originals* (the first N images of the test split), PSNR/SSIM of those reconstructions,
the prior's rate bound (bits/image, bits/pixel = ÷H·W, bits/latent-dim) and FLOPs per image
(training = 3 × forward, spec §10; counted in `evaluation/compute.py`). Base runs:
`evaluation/base_model.py`; end-to-end runs: `evaluation/end_to_end.py`.

Every FID/KID name carries its sample count ("rFID@200"): FID is biased upward for small N and
only comparable between equal N. Inception features of real reference sets are cached on disk by
`metrics/reference_stats.py` under a key of dataset, split, image size, N and the sha256 of the
Inception weights, so a reference set costs Inception time once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from unified_latents.data.containers import Split
from unified_latents.data.datasets import DataConfig, load_split
from unified_latents.evaluation.compute import autoencoder_flops
from unified_latents.metrics.frechet import (
    frechet_distance,
    frechet_distance_from_features,
    statistics_from_features,
)
from unified_latents.metrics.inception import FEATURE_DIM, InceptionFeatures
from unified_latents.metrics.kid import kernel_inception_distance
from unified_latents.metrics.reference_stats import (
    cache_path,
    cached_reference_features,
    cached_reference_statistics,
    reference_key,
)
from unified_latents.objectives.autoencoder import Autoencoder
from unified_latents.runs.autoencoder import (
    AutoencoderRunConfig,
    heldout_images,
    rate_statistics,
    reconstruction_statistics,
)
from unified_latents.sampling.samplers import SamplerKind
from unified_latents.visualize import interleave

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
    if max(num, num_real) < FEATURE_DIM:  # same value, without 2048² eigendecompositions
        fid = frechet_distance_from_features(features, reference)
    else:
        fid = frechet_distance(statistics_from_features(features), statistics)
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


def evaluate_autoencoder(
    model: Autoencoder,
    config: AutoencoderRunConfig,
    *,
    num: int,
    decoder_steps: int,
    sampler: SamplerKind,
    seed: int,
    extractor: InceptionFeatures | None,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> Evaluation:
    """Rate, PSNR/SSIM and (with an extractor) rFID/rKID on the first `num` test images."""
    settings = config.eval
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    # The rate is cheap (no sampling): estimate it on at least the training-time eval set.
    test, _ = real_images(config.data, "test", max(num, settings.num_images))
    rate = rate_statistics(model, test.images, settings.rate_passes, settings.batch_size, seed)
    seconds["rate"] = time.perf_counter() - start
    images = test.images[:num]
    start = time.perf_counter()
    quality, reconstructions = reconstruction_statistics(
        model,
        images,
        num_steps=decoder_steps,
        sampler=sampler,
        batch_size=settings.batch_size,
        seed=seed,
        progress=progress,
    )
    seconds["reconstruction"] = time.perf_counter() - start
    count = images.shape[0]
    metrics = {**rate, **quality, "num_images": float(count)}
    metrics["rate_num_images"] = float(test.images.shape[0])
    decoding = f"{decoder_steps} {sampler} decoder steps"
    if model.deterministic_decoder:
        decoding = "deterministic decoder"
    draws = f"on {test.describe()} ({settings.rate_passes} noise draws each), bits/image ÷ H·W"
    notes = {
        "bits_per_pixel": f"the latent's bits under the model's prior (UL: bound L_z) {draws}",
        "kl_bits_per_pixel": f"KL(q(z|x) ‖ N(0, I)), not a rate bound, {draws}",
        "psnr_db": f"{count} reconstructions ({decoding}) vs their originals, on "
        "uint8-quantised images",
    }
    notes = {name: text for name, text in notes.items() if name in metrics}
    if extractor is not None:
        originals = RealImages(config.data, "test", images)
        fid, fid_notes, fid_seconds = inception_distances(
            "r",
            reconstructions,
            originals,
            extractor,
            cache_dir=cache_dir,
            seed=seed,
            progress=progress,
        )
        metrics |= fid
        notes |= {name: f"reconstructions vs {text}" for name, text in fid_notes.items()}
        seconds |= fid_seconds
    start = time.perf_counter()
    flops = autoencoder_flops(model, decoder_steps=decoder_steps, sampler=sampler)
    seconds["flop_count"] = time.perf_counter() - start
    seconds["reconstruction_per_image"] = seconds["reconstruction"] / max(count, 1)
    return Evaluation(
        metrics=metrics,
        flops=flops,
        seconds=seconds,
        notes=notes,
        grid=interleave(images[:32], reconstructions[:32]),
        grid_columns=8,
    )
