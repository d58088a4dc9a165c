"""Analytic data oracles: distributions whose exact denoiser E[y | z_t] has a closed form.

Used to test the diffusion math and the samplers without training a network (DESIGN.md, Tests).
Everything is computed in float64 from λ directly (α² = sigmoid(λ), σ² = sigmoid(−λ)), independent
of `unified_latents.diffusion.process`, and cast back to the dtype of `z_t`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from unified_latents.diffusion.process import Prediction


def _alpha2_sigma2(logsnr: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
    """α², σ² in float64, shaped to broadcast against `like` [B, *event] (or scalars)."""
    logsnr = logsnr.double()
    if logsnr.ndim > 0:
        logsnr = logsnr.reshape(logsnr.shape[0], *([1] * (like.ndim - 1)))
    return torch.sigmoid(logsnr), torch.sigmoid(-logsnr)


@dataclass(frozen=True)
class GaussianOracle:
    """Data y ~ N(mean, diag std²) with a mean and std per dimension (event shape = mean.shape)."""

    mean: Tensor  # [*event]
    std: Tensor  # [*event]

    def sample(self, num: int, *, generator: torch.Generator | None = None) -> Tensor:
        noise = torch.randn((num, *self.mean.shape), generator=generator, dtype=torch.float64)
        return (self.mean.double() + self.std.double() * noise).float()  # [num, *event]

    def marginal(self, logsnr: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance of z = α y + σ ε at λ: N(α μ, α² s² + σ²), per dimension.

        `logsnr` is a scalar (returns [*event]) or [B] (returns [B, *event]); float64.
        """
        like = self.mean.double() if logsnr.ndim == 0 else self.mean.double().unsqueeze(0)
        alpha2, sigma2 = _alpha2_sigma2(logsnr, like)
        mean = alpha2.sqrt() * self.mean.double()
        return mean, alpha2 * self.std.double() ** 2 + sigma2 + torch.zeros_like(mean)

    def exact_denoiser(self, z_t: Tensor, logsnr: Tensor) -> Prediction:
        """x̂ = E[y | z_t] = μ + α s² / (α² s² + σ²) · (z_t − α μ)  (Gaussian conditioning),

        ε̂ = (z_t − α x̂) / σ, written as σ / (α² s² + σ²) · (z_t − α μ): the same quantity, without
        the cancellation of z_t − α x̂ at high λ.
        """
        alpha2, sigma2 = _alpha2_sigma2(logsnr, z_t)
        alpha, sigma = alpha2.sqrt(), sigma2.sqrt()
        mean, var = self.mean.double(), self.std.double() ** 2
        marginal_var = alpha2 * var + sigma2
        centred = z_t.double() - alpha * mean
        x_hat = mean + alpha * var / marginal_var * centred
        eps_hat = sigma / marginal_var * centred
        return Prediction(x_hat.to(z_t.dtype), eps_hat.to(z_t.dtype))


@dataclass(frozen=True)
class GaussianMixtureOracle:
    """Data y ~ Σ_k π_k N(means[k], diag stds[k]²); the exact denoiser mixes the components' exact
    denoisers with the responsibilities p(k | z_t) ∝ π_k N(z_t; α m_k, α² s_k² + σ²)."""

    means: Tensor  # [K, *event]
    stds: Tensor  # [K, *event]
    weights: Tensor  # [K], sums to one

    def component(self, k: int) -> GaussianOracle:
        return GaussianOracle(mean=self.means[k], std=self.stds[k])

    def sample(
        self, num: int, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Samples [num, *event] and their component labels [num]."""
        labels = torch.multinomial(
            self.weights.double(), num, replacement=True, generator=generator
        )
        noise = torch.randn((num, *self.means.shape[1:]), generator=generator, dtype=torch.float64)
        samples = self.means.double()[labels] + self.stds.double()[labels] * noise
        return samples.float(), labels

    def responsibilities(self, z_t: Tensor, logsnr: Tensor) -> Tensor:
        """p(k | z_t) [B, K] at log-SNR λ (a scalar or [B])."""
        alpha2, sigma2 = _alpha2_sigma2(logsnr, z_t)
        alpha2, sigma2 = alpha2.unsqueeze(1), sigma2.unsqueeze(1)  # broadcast over K
        var = alpha2 * self.stds.double() ** 2 + sigma2  # [B or 1, K, *event]
        residual = z_t.double().unsqueeze(1) - alpha2.sqrt() * self.means.double()
        log_density = -0.5 * (residual**2 / var + torch.log(var)).flatten(2).sum(dim=2)  # [B, K]
        return torch.softmax(torch.log(self.weights.double()) + log_density, dim=1)

    def exact_denoiser(self, z_t: Tensor, logsnr: Tensor) -> Prediction:
        """E[y | z_t] = Σ_k p(k | z_t) E_k[y | z_t]; ε̂ is affine in x̂, so it mixes the same way."""
        resp = self.responsibilities(z_t, logsnr)  # [B, K]
        x_hat = torch.zeros_like(z_t, dtype=torch.float64)
        eps_hat = torch.zeros_like(z_t, dtype=torch.float64)
        for k in range(self.means.shape[0]):
            pred = self.component(k).exact_denoiser(z_t.double(), logsnr)
            r_k = resp[:, k].reshape(-1, *([1] * (z_t.ndim - 1)))
            x_hat = x_hat + r_k * pred.x_hat
            eps_hat = eps_hat + r_k * pred.eps_hat
        return Prediction(x_hat.to(z_t.dtype), eps_hat.to(z_t.dtype))
