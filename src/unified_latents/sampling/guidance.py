"""Classifier-free guidance as a wrapper that turns a conditional denoiser into a `DenoiseFn`.

    ε̂ = ε̂_u + s · (ε̂_c − ε̂_u),   x̂ = x̂_u + s · (x̂_c − x̂_u)

At fixed z_t and λ, x̂ = (z_t − σ ε̂)/α is affine in ε̂ and the weights (1 − s, s) sum to one, so
mixing x̂ with the same weights is the same guidance as mixing ε̂ (the two stay consistent).
Guidance may be restricted to a λ interval (spec §8 [C]); outside it the conditional prediction is
used alone.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from unified_latents.diffusion.process import Prediction
from unified_latents.sampling.samplers import DenoiseFn

ConditionalDenoiseFn = Callable[[Tensor, Tensor, Tensor | None], Prediction]
"""(z_t [B, ...], logsnr [B], cond [B, ...] or None) → Prediction."""


def guided_denoiser(
    denoise_with_cond: ConditionalDenoiseFn,
    cond: Tensor,
    null_cond: Tensor,
    scale: float,
    logsnr_interval: tuple[float, float] | None = None,
) -> DenoiseFn:
    """A denoiser applying classifier-free guidance of weight `scale` towards `cond` [B, ...].

    `null_cond` is the "no condition" input the model was trained with under label dropout; it has
    the batch of `cond` or a batch of one (broadcast). Both branches run in ONE batched call
    (conditional rows first). `scale` 0 gives the unconditional and 1 the conditional prediction
    exactly (1 skips the unconditional branch). With `logsnr_interval = (lo, hi)`, rows whose λ lies
    outside [lo, hi] get the conditional prediction only; if no row is inside, the unconditional
    branch is not evaluated at all.
    """
    if null_cond.shape[0] == 1 and cond.shape[0] != 1:
        null_cond = null_cond.expand(cond.shape[0], *null_cond.shape[1:])
    if null_cond.shape != cond.shape:
        raise ValueError(
            f"null_cond {tuple(null_cond.shape)} does not match cond {tuple(cond.shape)}"
        )
    if logsnr_interval is not None and not logsnr_interval[0] <= logsnr_interval[1]:
        raise ValueError(f"logsnr_interval needs lo <= hi, got {logsnr_interval}")

    def active_rows(logsnr: Tensor) -> Tensor:
        if logsnr_interval is None:
            return torch.ones_like(logsnr, dtype=torch.bool)
        lo, hi = logsnr_interval
        return (logsnr >= lo) & (logsnr <= hi)  # [B]

    def guided(z_t: Tensor, logsnr: Tensor) -> Prediction:
        if scale == 1.0:
            return denoise_with_cond(z_t, logsnr, cond)
        active = active_rows(logsnr)
        if not bool(active.any()):
            return denoise_with_cond(z_t, logsnr, cond)
        if scale == 0.0 and bool(active.all()):
            return denoise_with_cond(z_t, logsnr, null_cond)
        batch_size = z_t.shape[0]
        both = denoise_with_cond(
            torch.cat([z_t, z_t]), torch.cat([logsnr, logsnr]), torch.cat([cond, null_cond])
        )
        cond_x, uncond_x = both.x_hat.split(batch_size)
        cond_eps, uncond_eps = both.eps_hat.split(batch_size)
        x_hat = uncond_x + scale * (cond_x - uncond_x)
        eps_hat = uncond_eps + scale * (cond_eps - uncond_eps)
        if not bool(active.all()):
            # Rows with different λ: only some are inside the interval (not the case in `sample`,
            # where every row shares λ). Outside rows keep the conditional prediction.
            mask = active.reshape(-1, *([1] * (z_t.ndim - 1)))
            x_hat = torch.where(mask, x_hat, cond_x)
            eps_hat = torch.where(mask, eps_hat, cond_eps)
        return Prediction(x_hat, eps_hat)

    return guided
