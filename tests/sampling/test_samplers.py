"""Samplers (UL-SPEC §8) with the analytic Gaussian oracle as the denoiser.

With Gaussian data the exact denoiser is affine in z_t, so each sampler step is an affine map plus
(for ancestral) Gaussian noise: the law of the returned x̂ is Gaussian per dimension and can be
propagated exactly (`sampler_law`). That splits the checks into
- the samples drawn by `sample` match that exact law (Monte-Carlo error only, tight), and
- the exact law approaches the target as steps grow (deterministic; first-order: error ∝ 1/N).
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import pytest
import torch
from torch import Tensor

from tests.oracles import GaussianOracle
from unified_latents.diffusion.process import Prediction
from unified_latents.diffusion.schedules import LogSNRSchedule
from unified_latents.sampling.samplers import SamplerKind, logsnr_grid, sample

DIM, NUM_SAMPLES = 16, 4096
ORACLE = GaussianOracle(mean=torch.linspace(-2.0, 2.0, DIM), std=torch.logspace(-0.7, 0.3, DIM))
SCHEDULES = {
    "latent": LogSNRSchedule(kind="cosine", logsnr_min=-15.0, logsnr_max=5.0),
    "pixel": LogSNRSchedule(kind="cosine", logsnr_min=-15.0, logsnr_max=15.0),
}
SAMPLERS: list[SamplerKind] = ["ancestral", "ddim"]


def _coefficients(logsnr: Tensor) -> tuple[Tensor, Tensor]:
    return torch.sigmoid(logsnr.double()).sqrt(), torch.sigmoid(-logsnr.double()).sqrt()


def sampler_law(
    schedule: LogSNRSchedule, num_steps: int, sampler: SamplerKind
) -> tuple[Tensor, Tensor]:
    """Exact per-dimension mean and variance of what `sample` returns with ORACLE.exact_denoiser
    and z_1 ~ N(0, I), in float64. With x̂ = k z_t + c (k = α s²/(α²s² + σ²), c = μ − k α μ):
    ancestral z_s = r (α_s/α_t) z_t + (1 − r) α_s x̂ + √((1 − r) σ_s²) ξ with r = e^{λt−λs};
    DDIM z_s = α_s x̂ + σ_s (z_t − α_t x̂)/σ_t."""
    mu, var_data = ORACLE.mean.double(), ORACLE.std.double() ** 2
    logsnrs = logsnr_grid(schedule, num_steps, torch.device("cpu")).double()

    def affine_denoiser(logsnr: Tensor) -> tuple[Tensor, Tensor]:
        alpha, sigma = _coefficients(logsnr)
        k = alpha * var_data / (alpha**2 * var_data + sigma**2)
        return k, mu - k * alpha * mu

    mean, var = torch.zeros(DIM, dtype=torch.float64), torch.ones(DIM, dtype=torch.float64)
    for logsnr_t, logsnr_s in itertools.pairwise(logsnrs):
        (alpha_t, sigma_t), (alpha_s, sigma_s) = _coefficients(logsnr_t), _coefficients(logsnr_s)
        k, c = affine_denoiser(logsnr_t)
        if sampler == "ancestral":
            r = torch.exp(logsnr_t - logsnr_s)
            gain = r * alpha_s / alpha_t + (1 - r) * alpha_s * k
            offset, added = (1 - r) * alpha_s * c, (1 - r) * sigma_s**2
        else:
            weight_x = alpha_s - sigma_s * alpha_t / sigma_t
            gain, offset, added = sigma_s / sigma_t + weight_x * k, weight_x * c, torch.zeros(())
        mean, var = gain * mean + offset, gain**2 * var + added
    k, c = affine_denoiser(logsnrs[-1])
    return k * mean + c, k**2 * var


def clean_prediction_law(logsnr_max: float) -> tuple[Tensor, Tensor]:
    """Law of E[y | z_0] for z_0 ~ q(z_0) at λ_max: N(μ, α² s⁴ / (α² s² + σ²)) — what a perfect
    sampler returns, since it returns the final clean prediction (spec §8), not a draw of y."""
    alpha, sigma = _coefficients(torch.tensor(logsnr_max))
    var_data = ORACLE.std.double() ** 2
    return ORACLE.mean.double(), alpha**2 * var_data**2 / (alpha**2 * var_data + sigma**2)


@functools.cache
def draw(sampler: SamplerKind, schedule_name: str) -> Tensor:
    """NUM_SAMPLES draws with 128 steps, cached: several tests look at the same samples."""
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(NUM_SAMPLES, DIM, generator=generator)
    schedule = SCHEDULES[schedule_name]
    return sample(
        ORACLE.exact_denoiser,
        noise,
        schedule=schedule,
        num_steps=128,
        sampler=sampler,
        generator=generator,
    )


def test_logsnr_grid() -> None:
    schedule = SCHEDULES["latent"]
    grid = logsnr_grid(schedule, 10, torch.device("cpu"))
    assert grid.shape == (11,) and grid.dtype == torch.float32
    assert grid[0].item() == -15.0 and grid[-1].item() == 5.0
    assert bool((grid.diff() > 0).all())
    torch.testing.assert_close(grid[1:-1], schedule.logsnr(torch.linspace(0.9, 0.1, 9)))


@pytest.mark.parametrize("schedule_name", list(SCHEDULES))
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_samples_match_the_exact_sampler_law(sampler: SamplerKind, schedule_name: str) -> None:
    """MC moments vs the exactly propagated law: 4.5 standard errors per dimension (32 checks per
    case: a false alarm has probability ~2e-4; the seed is fixed anyway)."""
    samples = draw(sampler, schedule_name).double()
    mean, var = sampler_law(SCHEDULES[schedule_name], 128, sampler)
    assert bool(((samples.mean(0) - mean).abs() < 4.5 * (var / NUM_SAMPLES).sqrt()).all())
    # Standard error of a Gaussian sample variance: var · √(2 / (n − 1)).
    assert bool(((samples.var(0) - var).abs() < 4.5 * var * math.sqrt(2 / (NUM_SAMPLES - 1))).all())


# Largest relative std error of the exact law at 128 steps, over the 16 dimensions (the smallest
# data std, 0.2, is the worst): measured ≈ 5.8 % ancestral / 2.5 % DDIM on the pixel schedule and
# 3.2 % / 1.3 % on the latent one; `test_exact_law_converges` asserts these bounds.
DISCRETISATION = {"ancestral": 0.065, "ddim": 0.03}


@pytest.mark.parametrize("schedule_name", list(SCHEDULES))
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_exact_law_converges(sampler: SamplerKind, schedule_name: str) -> None:
    schedule = SCHEDULES[schedule_name]
    target_mean, target_var = clean_prediction_law(schedule.logsnr_max)
    errors = []
    for num_steps in (128, 256):
        mean, var = sampler_law(schedule, num_steps, sampler)
        # Starting from N(0, I) instead of q(z_1) = N(α₁μ, ·) offsets the mean by ≈ α₁ s μ; the
        # ancestral noise forgets it, the deterministic DDIM flow carries it to the output.
        alpha_1 = math.sqrt(torch.sigmoid(torch.tensor(schedule.logsnr_min)).item())
        mean_slack = 2 * alpha_1 * float((ORACLE.std * ORACLE.mean.abs()).max()) + 1e-6
        assert bool(((mean - target_mean).abs() < mean_slack).all())
        errors.append(float((var.sqrt() / target_var.sqrt() - 1).abs().max()))
    assert errors[0] < DISCRETISATION[sampler]
    assert 0.4 < errors[1] / errors[0] < 0.65  # first order: doubling the steps halves the error


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_samplers_reproduce_the_data_moments(sampler: SamplerKind) -> None:
    """On the pixel schedule (λ_max = 15) the final clean prediction has the data's law up to a
    relative ~e^{−15}/s² ≈ 1e-5. Tolerance: 4.5 MC standard errors + the discretisation bound."""
    samples = draw(sampler, "pixel")
    mean_error = (samples.mean(0) - ORACLE.mean).abs()
    assert bool((mean_error < 4.5 * ORACLE.std / math.sqrt(NUM_SAMPLES) + 5e-3).all())
    std_error = (samples.std(0) / ORACLE.std - 1).abs()
    assert bool((std_error < 4.5 / math.sqrt(2 * NUM_SAMPLES) + DISCRETISATION[sampler]).all())


def test_latent_schedule_returns_the_shrunk_clean_prediction() -> None:
    """At λ_max = 5 (σ₀ ≈ 0.08) E[y | z_0] is visibly narrower than y for the s = 0.2 dimension."""
    _, target_var = clean_prediction_law(5.0)
    assert target_var[0].sqrt().item() / ORACLE.std[0].item() < 0.95
    samples = draw("ddim", "latent")
    assert samples[:, 0].std().item() / ORACLE.std[0].item() < 0.97


def test_ddim_is_deterministic_and_affine() -> None:
    """DDIM ignores the generator; with the Gaussian oracle it is affine in the noise, so two
    noises (0 and 1) give the law exactly, without Monte-Carlo error."""
    schedule = SCHEDULES["latent"]
    noise = torch.cat([torch.zeros(1, DIM), torch.ones(1, DIM), torch.randn(3, DIM)])
    first, again = (
        sample(
            ORACLE.exact_denoiser,
            noise,
            schedule=schedule,
            num_steps=128,
            sampler="ddim",
            generator=torch.Generator().manual_seed(seed),
        )
        for seed in (1, 2)
    )
    assert torch.equal(first, again)
    mean, var = sampler_law(schedule, 128, "ddim")
    torch.testing.assert_close(first[0].double(), mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close((first[1] - first[0]).double(), var.sqrt(), rtol=1e-4, atol=1e-5)


def test_ancestral_is_reproducible_from_the_generator() -> None:
    schedule, noise = SCHEDULES["latent"], torch.randn(8, DIM)

    def run(seed: int) -> Tensor:
        return sample(
            ORACLE.exact_denoiser,
            noise,
            schedule=schedule,
            num_steps=16,
            generator=torch.Generator().manual_seed(seed),
        )

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_sample_calls_and_returned_value(sampler: SamplerKind) -> None:
    """num_steps + 1 calls, λ rising from λ_min to λ_max, fp32 [B] log-SNR, and the return value is
    the last call's x̂ (in fp32 even for a bf16 denoiser)."""
    calls: list[Tensor] = []

    def denoise(z_t: Tensor, logsnr: Tensor) -> Prediction:
        calls.append(logsnr.clone())
        x_hat = torch.full_like(z_t, float(len(calls)), dtype=torch.bfloat16)
        return Prediction(x_hat, torch.zeros_like(z_t, dtype=torch.bfloat16))

    out = sample(
        denoise,
        torch.randn(3, 2, 4),
        schedule=SCHEDULES["latent"],
        num_steps=5,
        sampler=sampler,
        generator=torch.Generator().manual_seed(0),
        progress=True,
    )
    assert len(calls) == 6
    assert all(c.shape == (3,) and c.dtype == torch.float32 for c in calls)
    assert calls[0][0].item() == -15.0 and calls[-1][0].item() == 5.0
    assert all(bool((b > a).all()) for a, b in itertools.pairwise(calls))
    assert out.dtype == torch.float32 and out.shape == (3, 2, 4)
    assert bool((out == 6.0).all())


def test_invalid_arguments() -> None:
    noise = torch.randn(2, DIM)
    with pytest.raises(ValueError, match="num_steps"):
        sample(ORACLE.exact_denoiser, noise, schedule=SCHEDULES["latent"], num_steps=0)
    bad_kind: Any = "euler"
    with pytest.raises(ValueError, match="unknown sampler"):
        sample(
            ORACLE.exact_denoiser,
            noise,
            schedule=SCHEDULES["latent"],
            num_steps=2,
            sampler=bad_kind,
        )
