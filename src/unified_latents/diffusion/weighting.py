"""Loss weightings w(λ) and noise-level samplers used by the objectives (spec §3, §5, §6, §9)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def elbo_weight(logsnr: Tensor) -> Tensor:
    """w(λ) ≡ 1: the unweighted ELBO. The prior MUST use it, or the rate bound breaks (spec §5)."""
    return torch.ones_like(logsnr, dtype=torch.float32)


def sigmoid_weight(logsnr: Tensor, bias: float) -> Tensor:
    """w(λ) = sigmoid(b − λ) (spec §6); tends to the ELBO weight 1 as b → +∞."""
    return torch.sigmoid(bias - logsnr.float())


def stratified_uniform(
    batch_size: int, *, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> Tensor:
    """Stratified t_i = (u + i/B) mod 1 with one shared u ~ U(0, 1) (spec §3, as in VDM)."""
    u = torch.rand((), generator=generator, device=device)
    return torch.remainder(u + torch.arange(batch_size, device=device) / batch_size, 1.0)


# λ_aug for the single-stage, noise-augmented scheme (spec §9). The base model's weighted loss
# ∫ sigmoid(b − λ) g(λ) dλ over [λ_min, λ_0] equals E_{λ_aug}[∫_{λ_min}^{λ_aug} g(λ) dλ] (unweighted
# ELBOs restricted to λ ≤ λ_aug; Fubini) iff P(λ_aug ≥ λ) = sigmoid(b − λ) on (λ_min, λ_0]. That
# is the logistic(b, 1) survival function, so λ_aug = clamp(Λ, λ_min, λ_0) with Λ ~ logistic(b, 1):
# the logistic density on (λ_min, λ_0), a point mass sigmoid(b − λ_0) at λ_0 (the logistic's mass
# above λ_0) and a point mass sigmoid(λ_min − b) at λ_min (its mass below λ_min, where the
# restricted ELBO is empty and only the terminal KL is left). This is the only such law on
# [λ_min, λ_0]; renormalising instead of keeping the lower mass at λ_min would scale the loss by
# 1 / (1 − sigmoid(λ_min − b)).


def truncated_logistic_point_masses(bias: float, low: float, high: float) -> tuple[float, float]:
    """(P(λ_aug = low), P(λ_aug = high)) = (sigmoid(low − b), sigmoid(b − high))."""
    if not low < high:
        raise ValueError(f"need low < high, got {low}, {high}")
    return _sigmoid(low - bias), _sigmoid(bias - high)


def _sigmoid(x: float) -> float:
    return 0.5 * (1.0 + math.tanh(0.5 * x))  # no overflow for large |x|


def truncated_logistic_density(logsnr: Tensor, bias: float, low: float, high: float) -> Tensor:
    """Density of the continuous part: sigmoid(λ − b)·sigmoid(b − λ) on (low, high), else 0."""
    logsnr = logsnr.float()
    density = torch.sigmoid(logsnr - bias) * torch.sigmoid(bias - logsnr)
    return torch.where((logsnr > low) & (logsnr < high), density, torch.zeros_like(density))


def truncated_logistic_cdf(logsnr: Tensor, bias: float, low: float, high: float) -> Tensor:
    """P(λ_aug ≤ λ): 0 below `low`, sigmoid(λ − b) on [low, high) (the jump at `low` is the lower
    point mass), 1 from `high` on (the jump there is the upper point mass)."""
    logsnr = logsnr.float()
    cdf = torch.sigmoid(logsnr - bias)
    cdf = torch.where(logsnr < low, torch.zeros_like(cdf), cdf)
    return torch.where(logsnr >= high, torch.ones_like(cdf), cdf)


def truncated_logistic_quantile(u: Tensor, bias: float, low: float, high: float) -> Tensor:
    """Inverse CDF: clamp(b + logit(u), low, high) for u ∈ [0, 1] (u = 0 maps to `low`)."""
    return (bias + torch.logit(u.float())).clamp(low, high)


def sample_truncated_logistic(
    num: int,
    *,
    bias: float,
    low: float,
    high: float,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    stratified: bool = True,
) -> Tensor:
    """`num` draws of λ_aug [num] by inverse CDF. Each draw has the exact law either way;
    `stratified` makes the batch cover it evenly: u_i = (u + i/B) mod 1, randomly permuted.

    The permutation matters: λ_aug is paired with other stratified draws of the same batch (the
    t of the restricted ELBO, the decoder's t). Unpermuted, u_i − t_i (mod 1) would be constant and
    all pairs would lie on one line of the unit square, so the batch mean's variance would not
    shrink with the batch size; permuted, the pairs form a Latin hypercube.
    """
    if stratified:
        u = stratified_uniform(num, generator=generator, device=device)
        u = u[torch.randperm(num, generator=generator, device=device)]
    else:
        u = torch.rand(num, generator=generator, device=device)
    return truncated_logistic_quantile(u, bias, low, high)
