"""The law of λ_aug for the noise-augmented single-stage scheme (UL-SPEC §9): logistic(b, 1)
clamped to [λ_min, λ_0], i.e. its density inside plus point masses at both ends."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import torch

from unified_latents.diffusion.weighting import (
    sample_truncated_logistic,
    sigmoid_weight,
    truncated_logistic_cdf,
    truncated_logistic_density,
    truncated_logistic_point_masses,
    truncated_logistic_quantile,
)

# (bias, low, high): the paper's range, and a narrow one where both point masses are large.
CASES = [(0.0, -15.0, 5.0), (0.5, -3.0, 2.0), (3.0, -15.0, 5.0)]


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@pytest.mark.parametrize(("bias", "low", "high"), CASES)
def test_masses_and_density_sum_to_one(bias: float, low: float, high: float) -> None:
    mass_low, mass_high = truncated_logistic_point_masses(bias, low, high)
    assert mass_low == pytest.approx(sigmoid(low - bias), rel=1e-12)
    assert mass_high == pytest.approx(sigmoid(bias - high), rel=1e-12)

    def density(x: float) -> float:
        return float(
            truncated_logistic_density(torch.tensor([x], dtype=torch.float64), bias, low, high)
        )

    inside, _ = scipy.integrate.quad(density, low, high, points=[bias], limit=200)
    assert mass_low + inside + mass_high == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(("bias", "low", "high"), CASES)
def test_cdf_jumps_and_derivative(bias: float, low: float, high: float) -> None:
    mass_low, mass_high = truncated_logistic_point_masses(bias, low, high)
    cdf = truncated_logistic_cdf(
        torch.tensor([low - 1.0, low, high - 1e-4, high, high + 1]), bias, low, high
    )
    torch.testing.assert_close(
        cdf,
        torch.tensor([0.0, mass_low, 1.0 - mass_high, 1.0, 1.0]),
        atol=1e-4,
        rtol=0,
    )
    # Inside (low, high) the CDF is smooth and its derivative is the density.
    x = torch.linspace(low + 0.1, high - 0.1, 50, dtype=torch.float64)
    h = 1e-3
    slope = (
        truncated_logistic_cdf(x + h, bias, low, high)
        - truncated_logistic_cdf(x - h, bias, low, high)
    ) / (2 * h)
    torch.testing.assert_close(
        slope, truncated_logistic_density(x, bias, low, high), atol=1e-4, rtol=0
    )


@pytest.mark.parametrize(("bias", "low", "high"), CASES)
def test_survival_is_the_sigmoid_weight(bias: float, low: float, high: float) -> None:
    """P(λ_aug ≥ λ) = 1 − P(λ_aug < λ) = sigmoid(b − λ) on (low, high]: the identity that makes
    the average of restricted unweighted ELBOs the sigmoid-weighted loss."""
    logsnr = torch.linspace(low, high, 401)[1:]
    below = truncated_logistic_cdf(logsnr, bias, low, high)  # P(λ_aug ≤ λ) ...
    _, mass_high = truncated_logistic_point_masses(bias, low, high)
    below[-1] -= mass_high  # ... minus the atom at λ itself: P(λ_aug < λ)
    torch.testing.assert_close(1.0 - below, sigmoid_weight(logsnr, bias), atol=1e-6, rtol=0)


def test_quantile_inverts_the_cdf_and_clamps() -> None:
    bias, low, high = 0.5, -3.0, 2.0
    mass_low, mass_high = truncated_logistic_point_masses(bias, low, high)
    u = torch.linspace(mass_low + 1e-3, 1 - mass_high - 1e-3, 200)
    torch.testing.assert_close(
        truncated_logistic_cdf(truncated_logistic_quantile(u, bias, low, high), bias, low, high), u
    )
    edges = truncated_logistic_quantile(
        torch.tensor([0.0, mass_low / 2, 1 - mass_high / 2]), bias, low, high
    )
    assert edges.tolist() == [low, low, high]


def ks_statistic(samples: torch.Tensor, bias: float, low: float, high: float) -> float:
    """sup_x |F_n(x) − F(x)|, checked on both sides of every sample (F has jumps at the ends)."""
    xs = np.sort(samples.double().numpy())
    n = xs.size
    after = np.searchsorted(xs, xs, side="right") / n  # F_n(x)
    before = np.searchsorted(xs, xs, side="left") / n  # F_n(x−)
    cdf = truncated_logistic_cdf(torch.from_numpy(xs), bias, low, high).double().numpy()
    mass_low, mass_high = truncated_logistic_point_masses(bias, low, high)
    atoms = np.where(xs == low, mass_low, 0.0) + np.where(xs == high, mass_high, 0.0)
    return float(max(np.abs(after - cdf).max(), np.abs(before - (cdf - atoms)).max()))


@pytest.mark.parametrize(("bias", "low", "high"), CASES)
def test_sampler_passes_a_ks_test_against_its_cdf(bias: float, low: float, high: float) -> None:
    """Independent draws: the KS p-value (conservative when F has atoms) must not be tiny; the
    fixed seed makes the test deterministic. Stratified batches are even closer to F."""
    generator = torch.Generator().manual_seed(0)
    n = 20_000
    iid = sample_truncated_logistic(
        n, bias=bias, low=low, high=high, generator=generator, stratified=False
    )
    assert iid.dtype == torch.float32 and bool(((iid >= low) & (iid <= high)).all())
    statistic = ks_statistic(iid, bias, low, high)
    assert scipy.stats.kstwo.sf(statistic, n) > 1e-3, statistic
    stratified = sample_truncated_logistic(n, bias=bias, low=low, high=high, generator=generator)
    assert ks_statistic(stratified, bias, low, high) <= 2.0 / n + 1e-6


def test_point_mass_frequencies() -> None:
    """The fraction of draws exactly at each end matches its mass within 5 binomial SEs."""
    bias, low, high = 0.5, -3.0, 2.0
    n = 50_000
    draws = sample_truncated_logistic(
        n,
        bias=bias,
        low=low,
        high=high,
        generator=torch.Generator().manual_seed(1),
        stratified=False,
    )
    for value, mass in zip(
        (low, high), truncated_logistic_point_masses(bias, low, high), strict=True
    ):
        frequency = (draws == value).double().mean().item()
        assert abs(frequency - mass) < 5 * math.sqrt(mass * (1 - mass) / n), (
            value,
            frequency,
            mass,
        )


def test_sampler_is_seeded() -> None:
    def draw(seed: int) -> torch.Tensor:
        return sample_truncated_logistic(
            8, bias=0.0, low=-15.0, high=5.0, generator=torch.Generator().manual_seed(seed)
        )

    assert torch.equal(draw(3), draw(3)) and not torch.equal(draw(3), draw(4))
