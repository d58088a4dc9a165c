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

The samples' scores (and the record with its grid) are `evaluation/samples.py`'s, shared with
end-to-end runs; the held-out ELBO is this module's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

from torch import Tensor

from unified_latents.conditions import ConditionSource
from unified_latents.data.datasets import DataConfig
from unified_latents.evaluation.compute import base_flops
from unified_latents.evaluation.elbo import (
    base_elbo_nats,
    elbo_bits,
    prior_bound_nats,
    scored_pixels,
)
from unified_latents.evaluation.fid import Evaluation
from unified_latents.evaluation.run import EvaluateOptions, SamplingRequest
from unified_latents.evaluation.samples import (
    CLASSIFIER_IMAGE_SHAPE,
    classifier_metrics,
    sample_grid,
    sample_quality,
    sampled_quality,
    samples_evaluation,
)
from unified_latents.generation import SamplingSettings
from unified_latents.objectives.autoencoder import Autoencoder
from unified_latents.objectives.latent_diffusion import LatentDiffusion

__all__ = [
    "CLASSIFIER_IMAGE_SHAPE",
    "BaseSettings",
    "HeldOut",
    "classifier_metrics",
    "evaluate_base",
    "heldout_elbo",
    "sample_grid",
    "sample_quality",
    "sampled_quality",
]


class BaseSettings(SamplingSettings, Protocol):
    """A base-model run's eval settings (`BaseEvalConfig`): sampling, and the ELBO's draws."""

    @property
    def elbo_passes(self) -> int: ...


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


def evaluate_base(
    base: LatentDiffusion,
    autoencoder: Autoencoder,
    conditions: ConditionSource,
    data: DataConfig,
    heldout: HeldOut,
    request: SamplingRequest[BaseSettings],
    options: EvaluateOptions,
) -> Evaluation:
    """Samples for the labels of `request` (−1 = unconditional) and every metric of the module
    docstring."""
    settings = request.settings
    samples, metrics, notes, seconds = sampled_quality(
        base, autoencoder, conditions, data, request, options
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
    return samples_evaluation(
        samples,
        request.labels,
        conditions,
        (metrics, notes, seconds),
        lambda: base_flops(base, autoencoder, conditions, settings),
    )
