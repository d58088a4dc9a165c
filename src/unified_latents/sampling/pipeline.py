"""Generation: base model → final clean latent ẑ → diffusion decoder → image (UL-SPEC §8)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from unified_latents.diffusion.process import Prediction
from unified_latents.diffusion.schedules import LogSNRSchedule
from unified_latents.sampling.guidance import guided_denoiser
from unified_latents.sampling.samplers import DenoiseFn, SamplerKind, sample

ConditionalDenoiser = Callable[[Tensor, Tensor, Tensor | None], Prediction]


def sample_latents(
    denoise: ConditionalDenoiser,
    *,
    latent_shape: tuple[int, ...],
    schedule: LogSNRSchedule,
    cond: Tensor | None,
    null_cond: Tensor | None,
    num: int,
    guidance: float,
    guidance_interval: tuple[float, float] | None,
    num_steps: int,
    sampler: SamplerKind,
    generator: torch.Generator,
    device: torch.device,
) -> Tensor:
    """ẑ from z_1 ~ N(0, I) integrated to λ_max; classifier-free guidance when conditional."""
    noise = torch.randn((num, *latent_shape), generator=generator, device=device)
    denoise_fn: DenoiseFn
    if cond is None or null_cond is None:

        def unconditional(z_t: Tensor, logsnr: Tensor) -> Prediction:
            return denoise(z_t, logsnr, None)

        denoise_fn = unconditional
    else:
        denoise_fn = guided_denoiser(denoise, cond, null_cond, guidance, guidance_interval)
    return sample(
        denoise_fn,
        noise,
        schedule=schedule,
        num_steps=num_steps,
        sampler=sampler,
        generator=generator,
    )
