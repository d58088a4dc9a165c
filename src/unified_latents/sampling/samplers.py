"""Samplers as pure functions of a denoiser: z_1 ~ N(0, I) → final clean prediction (UL-SPEC §8).

Both samplers walk a uniform grid in t from 1 (λ_min, pure noise) to 0 (λ_max) and then make ONE
more denoiser call at λ_max, returning its clean prediction x̂ rather than a noisy z_0: the spec asks
for "the final clean prediction ẑ, not a noisy z_0" (§8). A run of `num_steps` transitions therefore
costs `num_steps + 1` network evaluations.

- ancestral (DDPM in λ-space): z_s ~ q(z_s | z_t, y = x̂(z_t)), the Gaussian posterior of §8.
- ddim (deterministic): z_s = α_s x̂ + σ_s ε̂.

All state (z, λ, coefficients) is fp32 whatever the denoiser computes in; all randomness comes from
the explicit `generator`, which must live on the device of `noise`. No gradients are disabled here:
call under `torch.no_grad()` unless you mean to differentiate through the sampler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor
from tqdm.auto import tqdm

from unified_latents.diffusion.process import Prediction, alpha_sigma, posterior_mean_var
from unified_latents.diffusion.schedules import LogSNRSchedule

SamplerKind = Literal["ancestral", "ddim"]
DenoiseFn = Callable[[Tensor, Tensor], Prediction]
"""(z_t [B, ...], logsnr [B] fp32) → Prediction(x_hat, eps_hat), both shaped like z_t."""


def logsnr_grid(schedule: LogSNRSchedule, num_steps: int, device: torch.device) -> Tensor:
    """λ at t = 1, 1 − 1/N, …, 0: `num_steps + 1` fp32 values increasing from λ_min to λ_max.

    The endpoints are set to the schedule's exact λ_min and λ_max (the closed form reproduces them
    only up to fp32 rounding of tan near π/2).
    """
    t = torch.linspace(1.0, 0.0, num_steps + 1, dtype=torch.float64, device=device)
    logsnr = schedule.logsnr(t)
    logsnr[0], logsnr[-1] = schedule.logsnr_min, schedule.logsnr_max
    return logsnr  # [num_steps + 1]


def ancestral_step(
    z_t: Tensor,
    prediction: Prediction,
    logsnr_t: Tensor,
    logsnr_s: Tensor,
    generator: torch.Generator | None,
) -> Tensor:
    """One draw from q(z_s | z_t, y = x̂) for λ_s > λ_t (spec §8); `logsnr_*` are [B]."""
    mean, var = posterior_mean_var(z_t, prediction.x_hat.float(), logsnr_t, logsnr_s)
    noise = torch.randn(z_t.shape, generator=generator, device=z_t.device, dtype=torch.float32)
    return mean + var.sqrt() * noise


def ddim_step(z_t: Tensor, prediction: Prediction, logsnr_s: Tensor) -> Tensor:
    """z_s = α_s x̂ + σ_s ε̂ (spec §8): deterministic; keeps the predicted noise."""
    alpha_s, sigma_s = alpha_sigma(logsnr_s)
    shape = (-1, *([1] * (z_t.ndim - 1)))
    return (
        alpha_s.reshape(shape) * prediction.x_hat.float()
        + sigma_s.reshape(shape) * prediction.eps_hat.float()
    )


def sample(
    denoise: DenoiseFn,
    noise: Tensor,
    *,
    schedule: LogSNRSchedule,
    num_steps: int,
    sampler: SamplerKind = "ancestral",
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> Tensor:
    """Integrate from z_1 = `noise` (~N(0, I), [B, ...]) down to λ_max; return the final x̂ (fp32).

    `num_steps` transitions on a uniform t grid, then one last denoiser call at λ_max whose clean
    prediction is returned (spec §8): `num_steps + 1` calls of `denoise` in total. The ancestral
    sampler draws its noise from `generator`; DDIM is deterministic given `noise`.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    if sampler not in ("ancestral", "ddim"):
        raise ValueError(f"unknown sampler {sampler!r}; expected 'ancestral' or 'ddim'")
    batch_size = noise.shape[0]
    logsnrs = logsnr_grid(schedule, num_steps, noise.device)
    z = noise.float()
    for i in tqdm(range(num_steps), disable=not progress, desc=f"{sampler} sampling"):
        logsnr_t = logsnrs[i].repeat(batch_size)  # [B]
        logsnr_s = logsnrs[i + 1].repeat(batch_size)  # [B], less noisy: λ_s > λ_t
        prediction = denoise(z, logsnr_t)
        if sampler == "ancestral":
            z = ancestral_step(z, prediction, logsnr_t, logsnr_s, generator)
        else:
            z = ddim_step(z, prediction, logsnr_s)
    final = denoise(z, logsnrs[-1].repeat(batch_size))
    return final.x_hat.float()
