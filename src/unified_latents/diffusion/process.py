"""The variance-preserving forward process, written in log-SNR λ (UL-SPEC §2).

    y_t = α·y + σ·ε,   α² = sigmoid(λ),   σ² = sigmoid(−λ),   λ = log(α²/σ²).

Everything here is a pure function of tensors; λ and the coefficients are computed in fp32.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class Prediction(NamedTuple):
    """What every denoiser returns: the clean-data estimate x̂ and the noise estimate ε̂."""

    x_hat: Tensor
    eps_hat: Tensor


def broadcast_to(values: Tensor, like: Tensor) -> Tensor:
    """Reshape a per-example vector [B] (or a scalar) so it broadcasts against `like` [B, ...]."""
    if values.ndim == 0:
        return values
    return values.reshape(values.shape[0], *([1] * (like.ndim - 1)))


def alpha_sigma(logsnr: Tensor) -> tuple[Tensor, Tensor]:
    """α and σ of a VP process at log-SNR λ; α² + σ² = 1 exactly up to rounding (spec §2)."""
    logsnr = logsnr.float()
    return torch.sigmoid(logsnr).sqrt(), torch.sigmoid(-logsnr).sqrt()


def diffuse(y: Tensor, logsnr: Tensor, eps: Tensor) -> Tensor:
    """y_t = α(λ)·y + σ(λ)·ε with λ per example [B]."""
    alpha, sigma = alpha_sigma(logsnr)
    return broadcast_to(alpha, y) * y + broadcast_to(sigma, y) * eps


def x_from_eps(y_t: Tensor, logsnr: Tensor, eps_hat: Tensor) -> Tensor:
    """x̂ = (y_t − σ ε̂) / α."""
    alpha, sigma = alpha_sigma(logsnr)
    return (y_t - broadcast_to(sigma, y_t) * eps_hat) / broadcast_to(alpha, y_t)


def eps_from_x(y_t: Tensor, logsnr: Tensor, x_hat: Tensor) -> Tensor:
    """ε̂ = (y_t − α x̂) / σ."""
    alpha, sigma = alpha_sigma(logsnr)
    return (y_t - broadcast_to(alpha, y_t) * x_hat) / broadcast_to(sigma, y_t)


def x_eps_from_v(y_t: Tensor, logsnr: Tensor, v_hat: Tensor) -> tuple[Tensor, Tensor]:
    """v-prediction (v = α ε − σ y): x̂ = α y_t − σ v̂,  ε̂ = σ y_t + α v̂."""
    alpha, sigma = alpha_sigma(logsnr)
    alpha, sigma = broadcast_to(alpha, y_t), broadcast_to(sigma, y_t)
    return alpha * y_t - sigma * v_hat, sigma * y_t + alpha * v_hat


def v_from_x_eps(y: Tensor, eps: Tensor, logsnr: Tensor) -> Tensor:
    """The v target for clean data y and noise ε: v = α ε − σ y."""
    alpha, sigma = alpha_sigma(logsnr)
    return broadcast_to(alpha, y) * eps - broadcast_to(sigma, y) * y


def posterior_mean_var(
    y_t: Tensor, y_hat: Tensor, logsnr_t: Tensor, logsnr_s: Tensor
) -> tuple[Tensor, Tensor]:
    """q(y_s | y_t, y = ŷ) for a less noisy λ_s > λ_t (spec §8):

    mean = e^{λt−λs} (α_s/α_t) y_t + (1 − e^{λt−λs}) α_s ŷ,   var = (1 − e^{λt−λs}) σ_s².
    """
    alpha_t, _ = alpha_sigma(logsnr_t)
    alpha_s, sigma_s = alpha_sigma(logsnr_s)
    ratio = torch.exp(logsnr_t.float() - logsnr_s.float())  # e^{λt−λs} ∈ (0, 1)
    one_minus = -torch.expm1(logsnr_t.float() - logsnr_s.float())
    mean = (
        broadcast_to(ratio * alpha_s / alpha_t, y_t) * y_t
        + broadcast_to(one_minus * alpha_s, y_t) * y_hat
    )
    var = broadcast_to(one_minus * sigma_s**2, y_t)
    return mean, var
