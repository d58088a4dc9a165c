"""Diffusion loss terms (UL-SPEC §5), and the rate bound being tight with the exact denoiser."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from tests.oracles import GaussianOracle
from unified_latents.diffusion.elbo import (
    diffusion_loss,
    gaussian_kl,
    nats_to_bits,
    sum_over_dims,
    terminal_kl,
)
from unified_latents.diffusion.process import Prediction, diffuse
from unified_latents.diffusion.schedules import LogSNRSchedule
from unified_latents.diffusion.weighting import elbo_weight, stratified_uniform


def test_sum_over_dims_keeps_the_batch() -> None:
    values = torch.arange(24.0).reshape(2, 3, 4)
    torch.testing.assert_close(sum_over_dims(values), torch.tensor([66.0, 210.0]))


def test_diffusion_loss_closed_form_and_fp32() -> None:
    generator = torch.Generator().manual_seed(0)
    eps = torch.randn(3, 2, 5, generator=generator)
    eps_hat = torch.randn(3, 2, 5, generator=generator)
    dlogsnr_dt = torch.tensor([-1.0, -20.0, -300.0])
    weight = torch.tensor([1.0, 0.5, 0.25])
    expected = 0.5 * -dlogsnr_dt * weight * ((eps - eps_hat) ** 2).sum(dim=(1, 2))
    torch.testing.assert_close(diffusion_loss(eps, eps_hat, dlogsnr_dt, weight), expected)
    low = diffusion_loss(eps.bfloat16(), eps_hat.bfloat16(), dlogsnr_dt, weight.bfloat16())
    assert low.dtype == torch.float32 and low.shape == (3,)
    assert float(diffusion_loss(eps, eps, dlogsnr_dt, weight).abs().max()) == 0.0


def test_gaussian_kl_matches_monte_carlo() -> None:
    generator = torch.Generator().manual_seed(1)
    mean_q, mean_p = torch.tensor([0.3, -1.0, 2.0]), torch.tensor([0.0, 0.5, 1.0])
    var_q, var_p = torch.tensor([0.5, 2.0, 0.1]), torch.tensor([1.0, 1.5, 0.3])
    num = 200_000
    samples = mean_q + var_q.sqrt() * torch.randn(num, 3, generator=generator, dtype=torch.float64)
    log_ratio = (
        -0.5 * torch.log(var_q)
        - 0.5 * (samples - mean_q) ** 2 / var_q
        + 0.5 * torch.log(var_p)
        + 0.5 * (samples - mean_p) ** 2 / var_p
    )  # log q − log p, [num, 3]
    estimate, standard_error = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(num)
    exact = gaussian_kl(mean_q, var_q, mean_p, var_p)
    assert bool(((exact - estimate).abs() < 5 * standard_error).all())
    assert bool((exact > 0).all())
    torch.testing.assert_close(gaussian_kl(mean_q, var_q, mean_q, var_q), torch.zeros(3))


@pytest.mark.parametrize("logsnr_min", [-2.0, 0.5])
def test_terminal_kl_matches_monte_carlo(logsnr_min: float) -> None:
    """KL(q(y_1 | y) ‖ N(0, I)) vs E_q[log q − log p], at λmin where the KL is not negligible."""
    generator = torch.Generator().manual_seed(2)
    y = torch.tensor([[0.0, 1.0, -2.0, 3.0], [0.5, 0.5, 0.5, 0.5]])  # [B=2, D=4]
    alpha2, sigma2 = 1 / (1 + math.exp(-logsnr_min)), 1 / (1 + math.exp(logsnr_min))
    num = 100_000
    eps = torch.randn(num, *y.shape, generator=generator, dtype=torch.float64)
    z = math.sqrt(alpha2) * y.double() + math.sqrt(sigma2) * eps  # [num, B, D]
    log_ratio = (-0.5 * math.log(sigma2) - 0.5 * eps**2 + 0.5 * z**2).sum(dim=2)  # [num, B]
    estimate, standard_error = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(num)
    exact = terminal_kl(y, logsnr_min)
    assert exact.shape == (2,) and exact.dtype == torch.float32
    assert bool(((exact.double() - estimate).abs() < 5 * standard_error).all())
    via_gaussian_kl = gaussian_kl(
        math.sqrt(alpha2) * y, torch.tensor(sigma2), torch.tensor(0.0), torch.tensor(1.0)
    ).sum(dim=1)
    torch.testing.assert_close(exact, via_gaussian_kl)


def test_terminal_kl_is_negligible_at_the_latent_lambda_min() -> None:
    """At λmin = −15, α₁² ≈ 3e-7: the terminal term is ~½ α₁² Σ y², tiny but non-negative."""
    y = torch.randn(8, 16, generator=torch.Generator().manual_seed(3))
    value = terminal_kl(y, -15.0)
    bound = 0.5 * math.exp(-15.0) * sum_over_dims(y**2) + 1e-5  # + fp32 slack of Σ_dims ~1e-7
    assert bool((value <= bound).all()) and bool((value >= -1e-5).all())


def test_nats_to_bits() -> None:
    assert nats_to_bits(math.log(2.0)) == pytest.approx(1.0)
    torch.testing.assert_close(
        nats_to_bits(torch.tensor([0.0, 8 * math.log(2.0)])), torch.tensor([0.0, 8.0])
    )


# ----------------------------------------------------------------------------------------------
# The rate bound (spec §5) on Gaussian data, where everything is known in closed form.
#
# L_z(x) = E_t ½(−λ')‖ε − ε̂(z_t, λ)‖² + KL(q(z_1|x) ‖ N(0, I)) is the negative ELBO of the
# diffusion path z_0 → z_1; averaged over x it bounds E_x KL(q(z_0|x) ‖ p(z_0)) ≥ I(x; z_0).
# Why it is TIGHT with the exact denoiser ε̂ = E[ε | z_t]: the forward process is Markov, so
# I(x; z_{0:1}) = I(x; z_0), and in continuous time the exact denoiser makes the model's reverse
# path equal the data's reverse path q(z_s | z_t). The only remaining gap is the terminal mismatch
# KL(q(z_1) ‖ N(0, I)) at λmin = −15, ≈ ½ α₁² Σ μ² ≈ 1e-6 nats here: negligible against MC error.
# Closed form per dimension: E_x KL(N(α₀x, σ₀²) ‖ N(α₀μ, α₀²s² + σ₀²)) = ½ log(1 + e^{λ₀} s²).
# ----------------------------------------------------------------------------------------------

RATE_ORACLE = GaussianOracle(
    mean=torch.linspace(-1.5, 1.5, 16),
    std=torch.logspace(-1.0, 0.3, 16),  # s ∈ [0.1, 2.0]
)
NUM_REPLICATES, BATCH_SIZE = 32, 1024  # 32k examples, ~0.25 s: SE ≈ 0.11 nats on ≈ 28 nats


def analytic_rate_nats(oracle: GaussianOracle, logsnr_max: float) -> float:
    """E_x KL(q(z_0|x) ‖ q(z_0)) summed over dimensions, from the two Gaussians' KL (float64)."""
    alpha2, sigma2 = 1 / (1 + math.exp(-logsnr_max)), 1 / (1 + math.exp(logsnr_max))
    var_x = oracle.std.double() ** 2
    marginal_var = alpha2 * var_x + sigma2  # q(z_0) = N(α₀μ, α₀²s² + σ₀²)
    # KL(N(m, σ₀²) ‖ N(α₀μ, v)) = ½[log(v/σ₀²) + (σ₀² + (m − α₀μ)²)/v − 1], E_x (m − α₀μ)² = α₀²s²
    per_dim = 0.5 * (
        torch.log(marginal_var / sigma2) + (sigma2 + alpha2 * var_x) / marginal_var - 1
    )
    return float(per_dim.sum())


def rate_estimate(
    denoise: Callable[[Tensor, Tensor], Prediction],
    schedule: LogSNRSchedule,
    *,
    seed: int = 0,
) -> tuple[float, float]:
    """Monte-Carlo mean of L_z (nats) over x ~ oracle and stratified t, and its standard error.

    Each replicate is one stratified batch, so the standard error comes from the spread of the
    replicate means (the stratified examples inside a batch are not independent).
    """
    generator = torch.Generator().manual_seed(seed)
    x = RATE_ORACLE.sample(NUM_REPLICATES * BATCH_SIZE, generator=generator)  # [N, D]
    t = torch.cat(
        [stratified_uniform(BATCH_SIZE, generator=generator) for _ in range(NUM_REPLICATES)]
    )
    eps = torch.randn(x.shape, generator=generator)
    logsnr, dlogsnr_dt = schedule.logsnr(t), schedule.dlogsnr_dt(t)
    z_t = diffuse(x, logsnr, eps)
    loss = diffusion_loss(eps, denoise(z_t, logsnr).eps_hat, dlogsnr_dt, elbo_weight(logsnr))
    loss = loss + terminal_kl(x, schedule.logsnr_min)  # [N]
    replicate_means = loss.double().reshape(NUM_REPLICATES, BATCH_SIZE).mean(dim=1)
    return replicate_means.mean().item(), replicate_means.std().item() / math.sqrt(NUM_REPLICATES)


LATENT_SCHEDULE = LogSNRSchedule(kind="cosine", logsnr_min=-15.0, logsnr_max=5.0)


@pytest.fixture(scope="module")
def exact_cosine_rate() -> tuple[float, float]:
    """The estimate with the exact denoiser on the latent schedule, shared by the tests below."""
    return rate_estimate(RATE_ORACLE.exact_denoiser, LATENT_SCHEDULE, seed=0)


def test_rate_bound_is_tight_with_the_exact_denoiser(
    exact_cosine_rate: tuple[float, float],
) -> None:
    estimate, standard_error = exact_cosine_rate
    exact = analytic_rate_nats(RATE_ORACLE, LATENT_SCHEDULE.logsnr_max)
    assert standard_error < 0.01 * exact  # the test has power: the SE is small against the value
    assert abs(estimate - exact) < 4 * standard_error, (estimate, exact, standard_error)


def test_rate_bound_is_strict_for_a_wrong_denoiser(exact_cosine_rate: tuple[float, float]) -> None:
    """Any other denoiser pays ½∫ e^λ E‖x̂ − E[x|z_t]‖² dλ more: the estimate is an upper bound."""
    wrong = GaussianOracle(mean=RATE_ORACLE.mean + 0.3, std=RATE_ORACLE.std * 1.5)
    exact = analytic_rate_nats(RATE_ORACLE, LATENT_SCHEDULE.logsnr_max)
    right, right_se = exact_cosine_rate
    wrong_value, wrong_se = rate_estimate(
        wrong.exact_denoiser, LATENT_SCHEDULE, seed=0
    )  # same draws
    assert wrong_value > exact + 10 * wrong_se, (wrong_value, exact, wrong_se)
    assert wrong_value > right + 10 * math.hypot(right_se, wrong_se)


@pytest.mark.parametrize(
    "schedule",
    [
        LogSNRSchedule(kind="linear", logsnr_min=-15.0, logsnr_max=5.0),
        LogSNRSchedule(kind="shifted-cosine", logsnr_min=-15.0, logsnr_max=5.0, shift=-2.0),
    ],
    ids=["linear", "shifted-cosine"],
)
def test_rate_estimate_does_not_depend_on_the_schedule_shape(
    schedule: LogSNRSchedule, exact_cosine_rate: tuple[float, float]
) -> None:
    """With w ≡ 1 the integral ∫ ½ E‖ε − ε̂‖² dλ depends on the endpoints only (spec §3)."""
    cosine, cosine_se = exact_cosine_rate
    other, other_se = rate_estimate(RATE_ORACLE.exact_denoiser, schedule, seed=1)
    assert abs(cosine - other) < 4 * math.hypot(cosine_se, other_se), (cosine, other)
    exact = analytic_rate_nats(RATE_ORACLE, schedule.logsnr_max)
    assert abs(other - exact) < 4 * other_se
