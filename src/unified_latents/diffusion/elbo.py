"""Per-example diffusion loss terms in nats, summed over dimensions (spec §5, §6)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from unified_latents.diffusion.process import alpha_sigma


def sum_over_dims(values: Tensor) -> Tensor:
    """Sum every dimension but the batch one: losses are sums over dimensions, never means."""
    return values.flatten(1).sum(dim=1)


def diffusion_loss(eps: Tensor, eps_hat: Tensor, dlogsnr_dt: Tensor, weight: Tensor) -> Tensor:
    """½ · (−dλ/dt) · w(λ) · Σ_dims (ε − ε̂)²  per example [B], in nats (spec §5 and §6).

    With w ≡ 1 and t ~ U(0, 1) its expectation is the continuous-time diffusion ELBO term.
    """
    squared_error = sum_over_dims((eps.float() - eps_hat.float()) ** 2)
    return 0.5 * (-dlogsnr_dt.float()) * weight.float() * squared_error


def terminal_kl(y: Tensor, logsnr_min: float) -> Tensor:
    """KL(q(y_1 | y) ‖ N(0, I)) in closed form, per example [B] (spec §5):

    ½ · Σ_dims (α₁² y² + σ₁² − log σ₁² − 1).
    """
    alpha, sigma = alpha_sigma(torch.tensor(logsnr_min, dtype=torch.float32, device=y.device))
    per_dim = alpha**2 * y.float() ** 2 + sigma**2 - torch.log(sigma**2) - 1.0
    return 0.5 * sum_over_dims(per_dim)


def gaussian_kl(mean_q: Tensor, var_q: Tensor, mean_p: Tensor, var_p: Tensor) -> Tensor:
    """KL(N(mean_q, var_q) ‖ N(mean_p, var_p)) per dimension (elementwise, broadcasting)."""
    return 0.5 * (torch.log(var_p / var_q) + (var_q + (mean_q - mean_p) ** 2) / var_p - 1.0)


def nats_to_bits(nats: Tensor | float) -> Tensor | float:
    """The one place nats become bits: divide by ln 2."""
    return nats / math.log(2.0)
