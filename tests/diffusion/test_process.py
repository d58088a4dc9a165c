"""The VP forward process in log-SNR form (UL-SPEC §2, §8) against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from unified_latents.diffusion.process import (
    alpha_sigma,
    broadcast_to,
    diffuse,
    eps_from_x,
    posterior_mean_var,
    v_from_x_eps,
    x_eps_from_v,
    x_from_eps,
)


def test_alpha_sigma_variance_preserving_and_logsnr() -> None:
    logsnr = torch.linspace(-30.0, 30.0, 601)
    alpha, sigma = alpha_sigma(logsnr)
    assert alpha.dtype == sigma.dtype == torch.float32
    torch.testing.assert_close(alpha**2 + sigma**2, torch.ones_like(logsnr), rtol=0, atol=1e-6)
    # λ = log(α²/σ²), checked where neither α nor σ underflows in fp32.
    middle = logsnr.abs() <= 20
    recovered = torch.log(alpha**2) - torch.log(sigma**2)
    torch.testing.assert_close(recovered[middle], logsnr[middle], rtol=0, atol=1e-4)
    assert bool((alpha > 0).all()) and bool((sigma > 0).all())


def test_alpha_sigma_computes_in_fp32_for_low_precision_input() -> None:
    alpha, sigma = alpha_sigma(torch.tensor([0.0, 5.0], dtype=torch.bfloat16))
    assert alpha.dtype == sigma.dtype == torch.float32
    assert alpha[0].item() == pytest.approx(math.sqrt(0.5))


def test_broadcast_to_shapes() -> None:
    like = torch.zeros(3, 2, 4, 5)
    assert broadcast_to(torch.arange(3.0), like).shape == (3, 1, 1, 1)
    assert broadcast_to(torch.tensor(2.0), like).shape == ()


def _example(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    y = torch.randn(6, 3, 4, 4, generator=generator)
    eps = torch.randn(6, 3, 4, 4, generator=generator)
    logsnr = torch.tensor([-8.0, -3.0, -0.5, 0.0, 2.5, 8.0])
    return y, eps, logsnr


def test_diffuse_is_alpha_y_plus_sigma_eps() -> None:
    y, eps, logsnr = _example()
    alpha2 = torch.sigmoid(logsnr).reshape(-1, 1, 1, 1)
    expected = alpha2.sqrt() * y + (1 - alpha2).sqrt() * eps
    torch.testing.assert_close(diffuse(y, logsnr, eps), expected, rtol=1e-5, atol=1e-6)


def test_x_eps_round_trip() -> None:
    y, eps, logsnr = _example()
    y_t = diffuse(y, logsnr, eps)
    torch.testing.assert_close(x_from_eps(y_t, logsnr, eps), y, rtol=1e-4, atol=2e-4)
    torch.testing.assert_close(eps_from_x(y_t, logsnr, y), eps, rtol=1e-4, atol=2e-4)
    # And the composition x → ε̂ → x̂ for an arbitrary prediction.
    x_hat = torch.randn_like(y)
    eps_hat = eps_from_x(y_t, logsnr, x_hat)
    torch.testing.assert_close(x_from_eps(y_t, logsnr, eps_hat), x_hat, rtol=1e-4, atol=2e-4)


def test_v_round_trip() -> None:
    y, eps, logsnr = _example()
    y_t = diffuse(y, logsnr, eps)
    v = v_from_x_eps(y, eps, logsnr)
    x_hat, eps_hat = x_eps_from_v(y_t, logsnr, v)
    torch.testing.assert_close(x_hat, y, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(eps_hat, eps, rtol=1e-5, atol=1e-5)
    # v = α ε − σ y is an orthogonal rotation of (y, ε): ‖v‖² + ‖y_t‖² = ‖y‖² + ‖ε‖².
    torch.testing.assert_close(v**2 + y_t**2, y**2 + eps**2, rtol=1e-5, atol=1e-5)


def test_v_prediction_agrees_with_eps_and_x_conversions() -> None:
    y, eps, logsnr = _example(1)
    y_t = diffuse(y, logsnr, eps)
    v_hat = torch.randn_like(y)
    x_hat, eps_hat = x_eps_from_v(y_t, logsnr, v_hat)
    torch.testing.assert_close(x_from_eps(y_t, logsnr, eps_hat), x_hat, rtol=1e-4, atol=2e-4)
    torch.testing.assert_close(eps_from_x(y_t, logsnr, x_hat), eps_hat, rtol=1e-4, atol=2e-4)


def test_x_error_is_e_minus_lambda_times_eps_error() -> None:
    """‖y − ŷ‖² = e^{−λ} ‖ε − ε̂‖² for ŷ derived from ε̂ at the same y_t (spec §2)."""
    y, eps, logsnr = _example(2)
    y_t = diffuse(y, logsnr, eps)
    eps_hat = eps + 0.3 * torch.randn_like(eps)
    y_hat = x_from_eps(y_t, logsnr, eps_hat)
    x_error = ((y - y_hat) ** 2).flatten(1).sum(1)
    eps_error = ((eps - eps_hat) ** 2).flatten(1).sum(1)
    torch.testing.assert_close(x_error, torch.exp(-logsnr) * eps_error, rtol=1e-3, atol=1e-5)


def _conditioned_posterior(
    y_t: float, y: float, logsnr_t: float, logsnr_s: float
) -> tuple[float, float]:
    """q(y_s | y_t, y) by Gaussian conditioning of the joint of (y_s, y_t) given y, in float64.

    y_s = α_s y + σ_s ε_s and y_t = α_t y + σ_t ε_t with the Markov chain y → y_s → y_t:
    y_t = (α_t/α_s) y_s + σ_{t|s} η, so Cov(y_s, y_t | y) = (α_t/α_s) σ_s² and Var(y_t | y) = σ_t².
    """
    alpha_t, sigma_t = (
        math.sqrt(1 / (1 + math.exp(-logsnr_t))),
        math.sqrt(1 / (1 + math.exp(logsnr_t))),
    )
    alpha_s, sigma_s = (
        math.sqrt(1 / (1 + math.exp(-logsnr_s))),
        math.sqrt(1 / (1 + math.exp(logsnr_s))),
    )
    cov_st = alpha_t / alpha_s * sigma_s**2
    mean = alpha_s * y + cov_st / sigma_t**2 * (y_t - alpha_t * y)
    var = sigma_s**2 - cov_st**2 / sigma_t**2
    return mean, var


@pytest.mark.parametrize(
    ("logsnr_t", "logsnr_s"), [(-15.0, -14.6), (-3.0, 0.0), (0.0, 0.01), (2.0, 5.0), (4.0, 15.0)]
)
def test_posterior_matches_gaussian_conditioning(logsnr_t: float, logsnr_s: float) -> None:
    generator = torch.Generator().manual_seed(3)
    y_t = torch.randn(4, 3, generator=generator)
    y_hat = torch.randn(4, 3, generator=generator)
    mean, var = posterior_mean_var(
        y_t, y_hat, torch.full((4,), logsnr_t), torch.full((4,), logsnr_s)
    )
    assert mean.shape == (4, 3) and var.shape in ((4, 1), (4, 3))
    for b in range(4):
        for j in range(3):
            expected_mean, expected_var = _conditioned_posterior(
                y_t[b, j].item(), y_hat[b, j].item(), logsnr_t, logsnr_s
            )
            assert mean[b, j].item() == pytest.approx(expected_mean, rel=1e-4, abs=1e-5)
            assert var[b, 0].item() == pytest.approx(expected_var, rel=1e-4, abs=1e-9)


def test_posterior_limits() -> None:
    """λ_s → λ_t: the posterior collapses on y_t; λ_s → +∞: it collapses on ŷ."""
    y_t, y_hat = torch.randn(2, 5), torch.randn(2, 5)
    logsnr_t = torch.full((2,), 1.0)
    mean, var = posterior_mean_var(y_t, y_hat, logsnr_t, logsnr_t + 1e-6)
    torch.testing.assert_close(mean, y_t, rtol=0, atol=1e-5)
    assert float(var.max()) < 1e-6
    mean, var = posterior_mean_var(y_t, y_hat, logsnr_t, torch.full((2,), 40.0))
    torch.testing.assert_close(mean, y_hat, rtol=0, atol=1e-5)
    assert float(var.max()) < 1e-12


def test_posterior_is_consistent_with_the_marginal() -> None:
    """y_t ~ q(y_t | y), then y_s ~ q(y_s | y_t, y), gives y_s ~ q(y_s | y) = N(α_s y, σ_s²)."""
    generator = torch.Generator().manual_seed(4)
    num = 200_000
    y = torch.full((num, 1), 0.7)
    logsnr_t, logsnr_s = torch.full((num,), -1.0), torch.full((num,), 1.5)
    y_t = diffuse(y, logsnr_t, torch.randn(num, 1, generator=generator))
    mean, var = posterior_mean_var(y_t, y, logsnr_t, logsnr_s)
    y_s = mean + var.sqrt() * torch.randn(num, 1, generator=generator)
    alpha_s, sigma_s = alpha_sigma(torch.tensor(1.5))
    # 5 standard errors of a mean (σ_s/√n) and of a variance (σ_s²·√(2/n)).
    assert abs(y_s.mean().item() - 0.7 * alpha_s.item()) < 5 * sigma_s.item() / math.sqrt(num)
    assert abs(y_s.var().item() - sigma_s.item() ** 2) < 5 * sigma_s.item() ** 2 * math.sqrt(
        2 / num
    )
