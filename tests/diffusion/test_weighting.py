"""Loss weightings and stratified t sampling (UL-SPEC §3, §5, §6)."""

from __future__ import annotations

import pytest
import torch

from unified_latents.diffusion.weighting import elbo_weight, sigmoid_weight, stratified_uniform

LOGSNR = torch.linspace(-15.0, 15.0, 301)


def test_elbo_weight_is_one_in_fp32() -> None:
    weight = elbo_weight(LOGSNR.to(torch.bfloat16))
    assert weight.dtype == torch.float32 and weight.shape == LOGSNR.shape
    assert bool((weight == 1).all())


def test_sigmoid_weight_closed_form() -> None:
    weight = sigmoid_weight(LOGSNR, bias=2.0)
    torch.testing.assert_close(weight, 1 / (1 + torch.exp(LOGSNR - 2.0)))
    assert sigmoid_weight(torch.tensor([2.0]), bias=2.0).item() == pytest.approx(0.5)
    # Decreasing in λ (less weight on clean data), increasing in the bias; non-strict because
    # sigmoid saturates to exactly 1 in fp32 at very low λ.
    assert bool((weight[1:] <= weight[:-1]).all()) and weight[-1] < weight[0]
    assert bool((sigmoid_weight(LOGSNR, bias=3.0) >= weight).all())


def test_sigmoid_weight_computes_in_fp32() -> None:
    assert sigmoid_weight(LOGSNR.to(torch.bfloat16), bias=0.0).dtype == torch.float32


def test_sigmoid_weight_tends_to_the_elbo_weight() -> None:
    """As b → +∞, sigmoid(b − λ) → 1 = the ELBO weight (spec §7 sanity: c_lf=1, b→∞ is VDM)."""
    gaps = [(1 - sigmoid_weight(LOGSNR, bias=b)).max().item() for b in (10.0, 20.0, 40.0)]
    assert gaps[0] > gaps[1] > gaps[2]
    torch.testing.assert_close(
        sigmoid_weight(LOGSNR, bias=40.0), elbo_weight(LOGSNR), rtol=0, atol=1e-6
    )


def test_stratified_uniform_range_and_even_spacing() -> None:
    generator = torch.Generator().manual_seed(0)
    for batch_size in (1, 2, 7, 64):
        for _ in range(20):
            t = stratified_uniform(batch_size, generator=generator)
            assert t.shape == (batch_size,) and t.dtype == torch.float32
            assert bool((t >= 0).all()) and bool((t < 1).all())
            # t_i = (u + i/B) mod 1: consecutive offsets are 1/B modulo 1 ...
            steps = torch.remainder(t[1:] - t[:-1], 1.0)
            torch.testing.assert_close(
                steps, torch.full_like(steps, 1 / batch_size), rtol=0, atol=1e-6
            )
            # ... so the sorted values are evenly spaced with one point in each [i/B, (i+1)/B).
            sorted_t = t.sort().values
            torch.testing.assert_close(
                sorted_t.diff(), torch.full((batch_size - 1,), 1 / batch_size), rtol=0, atol=1e-6
            )
            bins = torch.floor(sorted_t * batch_size).long()
            assert bins.tolist() == list(range(batch_size))


def test_stratified_uniform_is_seeded() -> None:
    first = stratified_uniform(16, generator=torch.Generator().manual_seed(7))
    again = stratified_uniform(16, generator=torch.Generator().manual_seed(7))
    other = stratified_uniform(16, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_stratified_uniform_is_uniform_marginally() -> None:
    """The shared offset u is U(0, 1), so each t_i is U(0, 1): mean ½, variance 1/12."""
    generator = torch.Generator().manual_seed(1)
    first = torch.stack([stratified_uniform(4, generator=generator)[0] for _ in range(4000)])
    # 5 standard errors: √(1/12 / n) ≈ 0.0046 for the mean, √((1/80 − 1/144) / n) ≈ 0.0012 for the
    # variance (fourth central moment of U(0, 1) is 1/80).
    assert first.mean().item() == pytest.approx(0.5, abs=0.023)
    assert first.var().item() == pytest.approx(1 / 12, abs=0.006)
