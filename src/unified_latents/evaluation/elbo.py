"""The ELBO of a base model (its unweighted diffusion loss + terminal KL, UL-SPEC §8) and the
stage-1 prior bound on the same latents, in bits per pixel: held-out measurements shared by the
base-model and end-to-end runs and `ul evaluate`."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from unified_latents.conditions import ConditionSource
from unified_latents.diffusion.elbo import nats_to_bits
from unified_latents.objectives.autoencoder import Autoencoder
from unified_latents.objectives.latent_diffusion import LatentDiffusion


@torch.no_grad()
def elbo_bits(
    losses: Mapping[str, Any],
    latents: Tensor,
    labels: Tensor,
    *,
    passes: int,
    batch_size: int,
    seed: int,
    pixels: int | Mapping[str, int],
    device: torch.device,
) -> dict[str, float]:
    """Average a per-example nats function over held-out latents; report bits/pixel (`pixels`:
    one count, or one per function name)."""
    generator = torch.Generator(device=device).manual_seed(seed)
    results: dict[str, float] = {}
    for name, function in losses.items():
        values = []
        for start in range(0, latents.shape[0], batch_size):
            z = latents[start : start + batch_size].to(device)
            y = labels[start : start + batch_size].to(device)
            values += [function(z, y, generator) for _ in range(passes)]
        bits = float(nats_to_bits(torch.cat(values).mean().item()))
        count = pixels if isinstance(pixels, int) else pixels[name]
        results[f"{name}_bits_per_pixel"] = bits / count
    return results


NatsFunction = Callable[[Tensor, Tensor, torch.Generator], Tensor]
"""(z_clean [B, ...], labels [B], generator) → per-example nats [B]."""


def scored_pixels(base: LatentDiffusion, autoencoder: Autoencoder) -> dict[str, int]:
    """The pixels each held-out bits figure is divided by: the stage-1 prior's bound covers the
    whole image or clip (H·W, T·H·W); the base model's ELBO too, except for frame prediction,
    where it covers only the generated frames."""
    pixels = math.prod(autoencoder.image_shape[1:])
    generated = pixels
    if base.context_frames:
        latent_frames = base.latent_shape[1]
        generated = pixels * (latent_frames - base.context_frames) // latent_frames
    return {"base_elbo": generated, "prior_bound": pixels}


def base_elbo_nats(model: LatentDiffusion, conditions: ConditionSource) -> NatsFunction:
    """The base model's unweighted ELBO (+ terminal KL) with the true, undropped condition."""

    def base_nats(z: Tensor, labels: Tensor, generator: torch.Generator) -> Tensor:
        return model(z, conditions.evaluation(labels), generator, drop_labels=False).elbo_nats

    return base_nats


def prior_bound_nats(autoencoder: Autoencoder) -> NatsFunction:
    """The stage-1 prior's bound L_z = L_diff + L_T (spec §5) on the same latents."""

    def prior_nats(z: Tensor, _: Tensor, generator: torch.Generator) -> Tensor:
        diffusion, terminal = autoencoder.rate(z, generator)
        return diffusion + terminal

    return prior_nats
