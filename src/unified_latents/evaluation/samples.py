"""Scoring generated samples, shared by the base-model and end-to-end evaluations
(`evaluation/base_model.py`, `evaluation/end_to_end.py`): draw one sample per label as `ul sample`
does, then gFID@N/gKID@N against the first N test images, FD_cls@N and classifier accuracy
(Fashion-MNIST 32×32 only; FD_cls is NOT FID), R@1/R@5 for caption-conditioned runs and FVD@N for
video; and the `Evaluation` record with its sample grid."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from torch import Tensor

from unified_latents.conditions import ConditionSource
from unified_latents.data.datasets import DataConfig
from unified_latents.evaluation.alignment import alignment_metrics
from unified_latents.evaluation.fid import Evaluation, RealImages, inception_distances, real_images
from unified_latents.evaluation.run import EvaluateOptions, SamplingRequest
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
from unified_latents.training.precision import autocast

CLASSIFIER_IMAGE_SHAPE = (1, 32, 32)


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
    request: SamplingRequest[SamplingSettings],
    options: EvaluateOptions,
    *,
    seconds_prefix: str = "",
) -> tuple[Tensor, dict[str, float], dict[str, str], dict[str, float]]:
    """Draw one sample per label of `request` (as `ul sample` does) and score them
    (`sample_quality`). Returns (uint8 samples, metrics, notes, seconds); the scoring timings are
    named with `seconds_prefix`."""
    cond, labels, settings = request.cond, request.labels, request.settings
    num, seed, progress = labels.shape[0], options.seed, options.progress
    clips = None  # video: the first `num` test clips (frame prediction continues them)
    if autoencoder.num_frames:
        clips = real_images(data, "test", num)[0].images
        num, labels = clips.shape[0], labels[: clips.shape[0]]
        if base.context_frames:
            cond = context_condition(base, autoencoder, clips, settings.batch_size)
    start = time.perf_counter()
    device = next(base.parameters()).device
    with autocast(device, options.precision):
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
    """The first rows of samples for the picture: one column per class (≤ 20 classes); for
    clips, the first 8 as a filmstrip row each."""
    if samples.dim() == 5:
        return samples[:8], 1
    classes = max(1, len(conditions.class_names)) if conditions.kind != "none" else 8
    columns = classes if classes <= 20 else 10
    return samples[: columns * 10], columns


def samples_evaluation(
    samples: Tensor,
    labels: Tensor,
    conditions: ConditionSource,
    scores: tuple[dict[str, float], dict[str, str], dict[str, float]],
    count_flops: Callable[[], dict[str, float]],
    more_grids: dict[str, tuple[Tensor, int]] | None = None,
) -> Evaluation:
    """The record of an evaluation that drew `samples` for `labels`: `scores` (metrics, notes,
    seconds), the FLOPs `count_flops` counts (timed as "flop_count") and the sample grid."""
    metrics, notes, seconds = scores
    start = time.perf_counter()
    flops = count_flops()
    seconds["flop_count"] = time.perf_counter() - start
    grid, columns = sample_grid(samples, conditions)
    return Evaluation(
        metrics=metrics,
        flops=flops,
        seconds=seconds,
        notes=notes,
        grid=grid,
        grid_columns=columns,
        arrays={"samples": samples.numpy(), "labels": labels.numpy()},
        more_grids=more_grids or {},
    )
