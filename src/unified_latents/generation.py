"""Sampling images from a trained base model and its autoencoder (UL-SPEC §8)."""

from __future__ import annotations

from typing import Literal, Protocol

import torch
from torch import Tensor

from unified_latents.conditions import ConditionSource
from unified_latents.data.containers import derived_seed
from unified_latents.objectives.autoencoder import Autoencoder
from unified_latents.objectives.latent_diffusion import LatentDiffusion
from unified_latents.sampling.pipeline import sample_latents
from unified_latents.sampling.samplers import SamplerKind

# What the decoder gets from the base model's sample (UL-SPEC §8 note [D]): "clean" is the final
# clean estimate ẑ, as the paper samples; "noisy" is α_0·ẑ + σ_0·ε, an input like the z_0 the
# decoder was trained on (the same as "clean" for latents without encoder noise, e.g. kl-vae).
DecoderInput = Literal["clean", "noisy"]


class SamplingSettings(Protocol):
    @property
    def base_steps(self) -> int: ...
    @property
    def decoder_steps(self) -> int: ...
    @property
    def sampler(self) -> SamplerKind: ...
    @property
    def guidance(self) -> float: ...
    @property
    def guidance_interval(self) -> tuple[float, float] | None: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def decoder_input(self) -> DecoderInput: ...
    @property
    def decoder_sampler(self) -> SamplerKind | None: ...


@torch.no_grad()
def generate_images(
    base: LatentDiffusion,
    autoencoder: Autoencoder,
    cond: Tensor | None,
    conditions: ConditionSource,
    settings: SamplingSettings,
    *,
    num: int,
    generator: torch.Generator,
) -> Tensor:
    """`num` images in [−1, 1]: base model (with guidance) → ẑ → decoder. `cond` has `num`
    rows, or is None for an unconditional model. ẑ is in the autoencoder's latent units (the
    base model undoes its normalisation); `settings.decoder_input` says what the decoder gets."""
    device = next(base.parameters()).device
    outputs = []
    for start in range(0, num, settings.batch_size):
        count = min(settings.batch_size, num - start)
        batch_cond = None if cond is None else cond[start : start + count].to(device)
        z_hat = sample_latents(
            base.denoise,
            latent_shape=base.latent_shape,
            schedule=base.schedule,
            cond=batch_cond,
            null_cond=conditions.null(count, device),
            num=count,
            guidance=settings.guidance,
            guidance_interval=settings.guidance_interval,
            num_steps=settings.base_steps,
            sampler=settings.sampler,
            generator=generator,
            device=device,
        )
        z_hat = base.denormalize(z_hat)
        if settings.decoder_input == "noisy":
            z_hat = autoencoder.add_encoder_noise(z_hat, generator)
        images = autoencoder.decode(
            z_hat,
            num_steps=settings.decoder_steps,
            sampler=settings.decoder_sampler or settings.sampler,
            generator=generator,
        )
        outputs.append(images.cpu())
    return torch.cat(outputs)


def sample_chunks(
    base: LatentDiffusion,
    autoencoder: Autoencoder,
    cond: Tensor | None,
    conditions: ConditionSource,
    settings: SamplingSettings,
    *,
    num: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
) -> dict[int, Tensor]:
    """This rank's chunks of `num` samples: chunk k holds samples [k·B, (k+1)·B) with
    B = `settings.batch_size`, is drawn with its own generator seeded from (seed, k), and rank r
    makes chunks r, r + W, r + 2W, …. Sample i is therefore the same whatever the number of
    ranks W (up to floating-point differences between devices). Returns chunk → images in
    [−1, 1] on the CPU."""
    device = next(base.parameters()).device
    chunks = {}
    for chunk in range(rank, -(-num // settings.batch_size), world_size):
        start = chunk * settings.batch_size
        count = min(settings.batch_size, num - start)
        generator = torch.Generator(device=device).manual_seed(derived_seed(seed, chunk))
        chunk_cond = None if cond is None else cond[start : start + count]
        chunks[chunk] = generate_images(
            base, autoencoder, chunk_cond, conditions, settings, num=count, generator=generator
        )
    return chunks
