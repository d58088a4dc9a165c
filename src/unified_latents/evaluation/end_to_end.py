"""What `ul evaluate` measures on a trained end-to-end run (UL-SPEC §9, §10): the union of what a
two-stage pipeline reports for its autoencoder run and its base run, with the same helpers.

- Samples, exactly as `ul sample` draws them for such a run (base model → ẑ → decoder with
  λ_aug = λ_0): gFID@N / gKID@N against the first N test images, FD_cls@N and classifier
  accuracy (Fashion-MNIST 32×32), as for a base run (`evaluation/base_model.py`).
- Reconstructions of the first N test images: rFID@N / rKID@N against those same originals,
  PSNR and SSIM, as for an autoencoder run (`evaluation/autoencoder.py`).
- Bits: the base model IS the prior, so the latent's rate is its unweighted ELBO (+ terminal KL)
  of z_0 = encode(x) with the true condition: `base_elbo_bits_per_pixel` (also reported as
  `bits_per_pixel`, the rate the autoencoder runs report, for rate–distortion tables).
- FLOPs (`evaluation/compute.py`): the whole end-to-end training step, 3 × one forward of encoder +
  base model + decoder, next to reconstruction and sampling costs.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

from torch import Tensor

from unified_latents.conditions import ConditionSource
from unified_latents.data.datasets import DataConfig
from unified_latents.evaluation.autoencoder import reconstruction_quality
from unified_latents.evaluation.base_model import BaseSettings
from unified_latents.evaluation.compute import end_to_end_flops
from unified_latents.evaluation.elbo import base_elbo_nats, elbo_bits
from unified_latents.evaluation.fid import Evaluation, RealImages, real_images
from unified_latents.evaluation.reconstruction import encode_images
from unified_latents.evaluation.run import EvaluateOptions, SamplingRequest
from unified_latents.evaluation.samples import sampled_quality, samples_evaluation
from unified_latents.objectives.single_stage import SingleStageLatents
from unified_latents.visualize import interleave


class EndToEndSettings(BaseSettings, Protocol):
    """An end-to-end run's eval settings (`EndToEndEvalConfig`)."""

    @property
    def num_images(self) -> int: ...  # at least this many images for the bits


def latent_bits(
    model: SingleStageLatents,
    conditions: ConditionSource,
    test: RealImages,
    labels: Tensor,
    settings: EndToEndSettings,
    seed: int,
) -> tuple[dict[str, float], dict[str, str]]:
    """The base model's unweighted ELBO of z_0 on `test` in bits/pixel, /image, /latent dim."""
    device = next(model.parameters()).device
    latents = encode_images(model.autoencoder, test.images, settings.batch_size, device)
    pixels = test.images.shape[-1] * test.images.shape[-2]
    results = elbo_bits(
        {"base_elbo": base_elbo_nats(model.base, conditions)},
        latents,
        labels,
        passes=settings.elbo_passes,
        batch_size=settings.batch_size,
        seed=seed,
        pixels=pixels,
        device=device,
    )
    per_pixel = results["base_elbo_bits_per_pixel"]
    results["base_elbo_bits_per_latent_dim"] = per_pixel * pixels / math.prod(latents.shape[1:])
    results["bits_per_pixel"] = per_pixel
    results["bits_per_image"] = per_pixel * pixels
    results["elbo_num_latents"] = float(latents.shape[0])
    draws = f"{settings.elbo_passes} noise draws each"
    text = f"unweighted ELBO + terminal KL of z_0 on {test.describe()} ({draws})"
    notes = {
        "base_elbo_bits_per_pixel": f"base model's {text}",
        "bits_per_pixel": "the latent's bits under its prior, which is the base model: the same "
        "number as base_elbo_bits_per_pixel (÷H·W)",
    }
    return results, notes


def evaluate_end_to_end(
    model: SingleStageLatents,
    data: DataConfig,
    conditions: ConditionSource,
    request: SamplingRequest[EndToEndSettings],
    options: EvaluateOptions,
) -> Evaluation:
    """Samples for the labels of `request` (−1 = unconditional), reconstructions of the first N
    test images (N = number of labels) and every metric of the module docstring."""
    settings, labels = request.settings, request.labels
    num = labels.shape[0]
    base, autoencoder = model.base, model.autoencoder
    samples, metrics, notes, seconds = sampled_quality(
        base, autoencoder, conditions, data, request, options, seconds_prefix="samples_"
    )

    # The rate is cheap (no sampling): estimate it on at least the training-time eval set.
    test, test_labels = real_images(data, "test", max(num, settings.num_images))
    start = time.perf_counter()
    bits, bits_notes = latent_bits(model, conditions, test, test_labels, settings, options.seed)
    metrics |= bits
    notes |= bits_notes
    seconds["elbo"] = time.perf_counter() - start

    originals = RealImages(data, "test", test.images[:num])
    decoding = f"{settings.decoder_steps} {settings.sampler} decoder steps, λ_aug = λ_0"
    quality, quality_notes, quality_seconds, reconstructions = reconstruction_quality(
        autoencoder,
        originals,
        decoding,
        num_steps=settings.decoder_steps,
        sampler=settings.sampler,
        batch_size=settings.batch_size,
        options=options,
        seconds_prefix="reconstructions_",
    )
    metrics |= quality
    notes |= quality_notes
    seconds |= quality_seconds

    pairs = interleave(originals.images[:32], reconstructions[:32])
    return samples_evaluation(
        samples,
        labels,
        conditions,
        (metrics, notes, seconds),
        lambda: end_to_end_flops(model, conditions, settings),
        more_grids={"reconstructions": (pairs, 8)},
    )
