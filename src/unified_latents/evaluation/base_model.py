"""What `ul evaluate` measures on a trained base-model run (UL-SPEC §8, §10).

- gFID@N and gKID@N of N class-balanced samples (sample i is asked for class i mod K) against the
  first N images of the dataset's *test* split, the same images rFID@N uses; the reference
  features are cached on disk.
- Caption-conditioned runs (emoji captions): R@1/R@5 of the samples' prompts with the alignment
  metric trained in this project, its chance and the real images' R@1 (evaluation/alignment.py).
- Video runs: FVD@N, and for frame prediction copy-last beside the model (evaluation/video.py).
- FD_cls@N and classifier accuracy (Fashion-MNIST 32×32 only): features of the shipped classifier
  (`metrics/classifier.py`) for the samples against the same N test images. FD_cls is NOT FID.
- The base model's unweighted ELBO in bits/pixel on held-out latents, next to the stage-1 prior's
  bound on the same latents (the paper's "latent bpd (base model)", Table 5).
- FLOPs: base-model forward per sample, training = 3 × forward (spec §10), and one sample:
  base-model passes (counted by running the real sampler and guidance wrapper on a stub, so
  guidance doubles them exactly where active) × forward, plus a decoding run counted directly.
- Sampling cost: FLOPs above and the measured seconds per sample.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from torch import Tensor

from unified_latents.conditions import ConditionSource
from unified_latents.data.datasets import (
    DataConfig,
)
from unified_latents.evaluation.alignment import alignment_metrics
from unified_latents.evaluation.compute import base_flops
from unified_latents.evaluation.elbo import (
    base_elbo_nats,
    elbo_bits,
    prior_bound_nats,
    scored_pixels,
)
from unified_latents.evaluation.fid import Evaluation, RealImages, inception_distances, real_images
from unified_latents.evaluation.run import EvaluateOptions
from unified_latents.evaluation.video import video_quality
from unified_latents.generation import (
    SamplingSettings,
    context_condition,
    context_frames,
    keep_context,
    sample_images,
)
from unified_latents.metrics.classifier import (
    classifier_features,
    classify,
    fd_cls,
    load_fashion_classifier,
    weights_fingerprint,
)
from unified_latents.metrics.inception import InceptionFeatures
from unified_latents.objectives.autoencoder import Autoencoder
from unified_latents.objectives.latent_diffusion import LatentDiffusion

CLASSIFIER_IMAGE_SHAPE = (1, 32, 32)


class BaseSettings(SamplingSettings, Protocol):
    """A base-model run's eval settings (`BaseEvalConfig`): sampling, and the ELBO's draws."""

    @property
    def elbo_passes(self) -> int: ...


def classifier_metrics(
    samples: Tensor, labels: Tensor, real: RealImages, real_labels: Tensor
) -> tuple[dict[str, float], dict[str, str]]:
    """FD_cls@N and accuracies with the shipped Fashion-MNIST classifier, where it applies."""
    num = samples.shape[0]
    name = f"FD_cls@{num}"
    if real.data.name != "fashion-mnist" or tuple(samples.shape[1:]) != CLASSIFIER_IMAGE_SHAPE:
        return {}, {name: "skipped: the classifier is for Fashion-MNIST 32×32 greyscale only"}
    if num < 2:
        return {}, {name: "skipped: needs at least 2 samples"}
    try:
        classifier = load_fashion_classifier()
    except FileNotFoundError as error:
        return {}, {name: f"skipped: {error}"}
    sample_features = classifier_features(samples, classifier=classifier)
    real_features = classifier_features(real.images, classifier=classifier)
    metrics = {name: fd_cls(sample_features, real_features)}
    fingerprint = weights_fingerprint()[:12]
    notes = {
        name: f"Fréchet distance of the shipped classifier's features (sha256 {fingerprint}…) "
        f"of the samples vs {real.describe()}; not FID, not comparable to FID"
    }
    asked = labels >= 0
    if bool(asked.any()):
        predicted = classify(samples[asked], classifier=classifier)
        metrics["classifier_accuracy"] = (predicted == labels[asked]).float().mean().item()
        notes["classifier_accuracy"] = "fraction of samples classified as the class they were "
        notes["classifier_accuracy"] += "generated for"
    real_predicted = classify(real.images, classifier=classifier)
    metrics["classifier_accuracy_real"] = (real_predicted == real_labels).float().mean().item()
    notes["classifier_accuracy_real"] = f"the classifier on {real.describe()} (ceiling)"
    return metrics, notes


@dataclass(frozen=True)
class HeldOut:
    """The held-out inputs of a base model's ELBO: latents (or pixel-space images) in the base
    model's input units, their condition keys (labels, or (index, epoch) rows for captions), and
    what they are, for the report."""

    inputs: Tensor
    keys: Tensor
    description: str  # e.g. "cached test latents"


def heldout_elbo(
    base: LatentDiffusion,
    autoencoder: Autoencoder,
    conditions: ConditionSource,
    heldout: HeldOut,
    *,
    passes: int,
    batch_size: int,
    seed: int,
) -> dict[str, float]:
    """Unweighted base-model ELBO and the stage-1 prior's bound on the same held-out latents
    (the bound only for latents with a prior: not kl-vae or pixels), in bits/pixel and
    bits/latent dim."""
    pixels = scored_pixels(base, autoencoder)
    functions = {"base_elbo": base_elbo_nats(base, conditions)}
    if autoencoder.has_latent_prior:
        functions["prior_bound"] = prior_bound_nats(autoencoder)
    results = elbo_bits(
        functions,
        heldout.inputs,
        heldout.keys,
        passes=passes,
        batch_size=batch_size,
        seed=seed,
        pixels=pixels,
        device=next(base.parameters()).device,
    )
    for name in functions:  # the latent dimensions behind the same pixels
        latent_dims = math.prod(base.latent_shape) * pixels[name] // pixels["prior_bound"]
        per_pixel = results[f"{name}_bits_per_pixel"]
        results[f"{name}_bits_per_latent_dim"] = per_pixel * pixels[name] / latent_dims
    results["elbo_num_latents"] = float(heldout.inputs.shape[0])
    return results


def sample_quality(
    samples: Tensor,
    labels: Tensor,
    data: DataConfig,
    *,
    extractor: InceptionFeatures | None,
    cache_dir: Path | None,
    seed: int,
    progress: bool,
) -> tuple[dict[str, float], dict[str, str], dict[str, float]]:
    """gFID@N/gKID@N (with an extractor), FD_cls@N and classifier accuracy of N uint8 samples
    against the first N images of `data`'s test split (the set rFID uses). Returns (metrics,
    notes, seconds)."""
    num = samples.shape[0]
    metrics: dict[str, float] = {"num_samples": float(num)}
    real, real_labels = real_images(data, "test", num)
    notes: dict[str, str] = {}
    seconds: dict[str, float] = {}
    if extractor is not None:
        fid, fid_notes, seconds = inception_distances(
            "g", samples, real, extractor, cache_dir=cache_dir, seed=seed, progress=progress
        )
        metrics |= fid
        notes |= {name: f"samples vs {text}" for name, text in fid_notes.items()}
    start = time.perf_counter()
    classifier, classifier_notes = classifier_metrics(samples, labels, real, real_labels)
    metrics |= classifier
    notes |= classifier_notes
    seconds["classifier"] = time.perf_counter() - start
    return metrics, notes, seconds


def sampled_quality(
    base: LatentDiffusion,
    autoencoder: Autoencoder,
    conditions: ConditionSource,
    data: DataConfig,
    *,
    cond: Tensor | None,
    labels: Tensor,
    settings: SamplingSettings,
    options: EvaluateOptions,
    seconds_prefix: str = "",
) -> tuple[Tensor, dict[str, float], dict[str, str], dict[str, float]]:
    """Draw one sample per label (as `ul sample` does) and score them (`sample_quality`).
    Returns (uint8 samples, metrics, notes, seconds); the scoring timings are named with
    `seconds_prefix`."""
    num, seed, progress = labels.shape[0], options.seed, options.progress
    clips = None  # video: the first `num` test clips (frame prediction continues them)
    if autoencoder.num_frames:
        clips = real_images(data, "test", num)[0].images
        num, labels = clips.shape[0], labels[: clips.shape[0]]
        if base.context_frames:
            cond = context_condition(base, autoencoder, clips, settings.batch_size)
    start = time.perf_counter()
    samples = sample_images(
        base, autoencoder, cond, conditions, settings, num=num, seed=seed, progress=progress
    )
    seconds = {"sampling": time.perf_counter() - start}
    seconds["sampling_per_sample"] = seconds["sampling"] / max(num, 1)
    if clips is not None:
        samples = keep_context(base, samples, clips)
        metrics, notes, quality_seconds = video_quality(
            samples, clips, context_frames(base, samples), options
        )
        seconds |= {f"{seconds_prefix}{name}": value for name, value in quality_seconds.items()}
        return samples, metrics, notes, seconds
    metrics, notes, quality_seconds = sample_quality(
        samples,
        labels,
        data,
        extractor=options.extractor,
        cache_dir=options.cache_dir,
        seed=seed,
        progress=progress,
    )
    seconds |= {f"{seconds_prefix}{name}": value for name, value in quality_seconds.items()}
    if conditions.keyed_by_index and conditions.heldout_captions is not None:  # text-to-image
        start = time.perf_counter()
        real = real_images(data, "test", num)[0].images
        device = next(base.parameters()).device
        alignment = alignment_metrics(samples, real, conditions.heldout_captions, device)
        metrics |= alignment[0]
        notes |= alignment[1]
        seconds[f"{seconds_prefix}alignment"] = time.perf_counter() - start
    return samples, metrics, notes, seconds


def sample_grid(samples: Tensor, conditions: ConditionSource) -> tuple[Tensor, int]:
    """The first rows of samples for the picture: one column per class (≤ 20 classes)."""
    classes = max(1, len(conditions.class_names)) if conditions.kind != "none" else 8
    columns = classes if classes <= 20 else 10
    return samples[: columns * 10], columns


def evaluate_base(
    base: LatentDiffusion,
    autoencoder: Autoencoder,
    conditions: ConditionSource,
    data: DataConfig,
    heldout: HeldOut,
    *,
    cond: Tensor | None,
    labels: Tensor,
    settings: BaseSettings,
    options: EvaluateOptions,
) -> Evaluation:
    """Samples for `labels` (−1 = unconditional) and every metric of the module docstring."""
    samples, metrics, notes, seconds = sampled_quality(
        base,
        autoencoder,
        conditions,
        data,
        cond=cond,
        labels=labels,
        settings=settings,
        options=options,
    )
    start = time.perf_counter()
    elbo = heldout_elbo(
        base,
        autoencoder,
        conditions,
        heldout,
        passes=settings.elbo_passes,
        batch_size=settings.batch_size,
        seed=options.seed,
    )
    metrics |= elbo
    latents = f"the first {int(elbo['elbo_num_latents'])} {heldout.description}"
    passes = f"{settings.elbo_passes} noise draws each"
    notes["base_elbo_bits_per_pixel"] = f"unweighted ELBO + terminal KL on {latents} ({passes})"
    if "prior_bound_bits_per_pixel" in elbo:
        notes["prior_bound_bits_per_pixel"] = "stage-1 prior's L_z on the same latents"
    seconds["elbo"] = time.perf_counter() - start
    start = time.perf_counter()
    flops = base_flops(base, autoencoder, conditions, settings)
    seconds["flop_count"] = time.perf_counter() - start
    grid, columns = sample_grid(samples, conditions)
    if samples.dim() == 5:  # clips: a filmstrip row each
        grid, columns = samples[:8], 1
    return Evaluation(
        metrics=metrics,
        flops=flops,
        seconds=seconds,
        notes=notes,
        grid=grid,
        grid_columns=columns,
        arrays={"samples": samples.numpy(), "labels": labels.numpy()},
    )
