"""Classifier-free guidance wrapper (UL-SPEC §8): exact special cases, batching, the λ interval."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from tests.oracles import GaussianMixtureOracle
from unified_latents.diffusion.process import Prediction, x_from_eps
from unified_latents.diffusion.schedules import LogSNRSchedule
from unified_latents.sampling.guidance import guided_denoiser
from unified_latents.sampling.samplers import sample

NULL = 2.0  # the "no condition" label of the toy denoisers below


class RecordingDenoiser:
    """A conditional denoiser whose output depends on the condition, and which records its calls.

    ε̂ = tanh(z_t) + 0.3·cond, x̂ consistent with it at (z_t, λ); the null label gives cond = NULL.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[int, Tensor]] = []

    def __call__(self, z_t: Tensor, logsnr: Tensor, cond: Tensor | None) -> Prediction:
        assert cond is not None
        self.calls.append((z_t.shape[0], cond.clone()))
        eps_hat = torch.tanh(z_t) + 0.3 * cond.reshape(-1, 1)
        return Prediction(x_from_eps(z_t, logsnr, eps_hat), eps_hat)


def _inputs(batch_size: int = 4, logsnr: float = 0.0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    generator = torch.Generator().manual_seed(0)
    z_t = torch.randn(batch_size, 3, generator=generator)
    cond = torch.tensor([0.0, 1.0, 0.0, 1.0])[:batch_size]
    return z_t, torch.full((batch_size,), logsnr), cond, torch.full((batch_size,), NULL)


def test_guidance_combines_both_branches_in_one_batched_call() -> None:
    denoiser = RecordingDenoiser()
    z_t, logsnr, cond, null = _inputs()
    guided = guided_denoiser(denoiser, cond, null, scale=3.0)(z_t, logsnr)
    assert [size for size, _ in denoiser.calls] == [8]
    assert torch.equal(denoiser.calls[0][1], torch.cat([cond, null]))
    conditional, unconditional = denoiser(z_t, logsnr, cond), denoiser(z_t, logsnr, null)
    expected_eps = unconditional.eps_hat + 3.0 * (conditional.eps_hat - unconditional.eps_hat)
    expected_x = unconditional.x_hat + 3.0 * (conditional.x_hat - unconditional.x_hat)
    torch.testing.assert_close(guided.eps_hat, expected_eps)
    torch.testing.assert_close(guided.x_hat, expected_x)
    # Mixing x̂ with the guidance weights is the same as converting the guided ε̂ (x̂ affine in ε̂).
    torch.testing.assert_close(guided.x_hat, x_from_eps(z_t, logsnr, guided.eps_hat))


@pytest.mark.parametrize(("scale", "branch"), [(1.0, "conditional"), (0.0, "unconditional")])
def test_scales_one_and_zero_are_exactly_one_branch_in_one_unbatched_call(
    scale: float, branch: str
) -> None:
    """Scale 1 is exactly the conditional prediction (no unconditional branch is evaluated),
    scale 0 exactly the unconditional one."""
    denoiser = RecordingDenoiser()
    z_t, logsnr, cond, null = _inputs()
    guided = guided_denoiser(denoiser, cond, null, scale=scale)(z_t, logsnr)
    assert [size for size, _ in denoiser.calls] == [4]
    expected = denoiser(z_t, logsnr, cond if branch == "conditional" else null)
    assert torch.equal(guided.x_hat, expected.x_hat)
    assert torch.equal(guided.eps_hat, expected.eps_hat)


@pytest.mark.parametrize("logsnr", [-6.0, 4.5])
def test_outside_the_interval_guidance_is_off(logsnr: float) -> None:
    denoiser = RecordingDenoiser()
    z_t, logsnr_t, cond, null = _inputs(logsnr=logsnr)
    wrapped = guided_denoiser(denoiser, cond, null, scale=4.0, logsnr_interval=(-5.0, 4.0))
    guided = wrapped(z_t, logsnr_t)
    assert [size for size, _ in denoiser.calls] == [4]  # the unconditional half is skipped
    conditional = denoiser(z_t, logsnr_t, cond)
    assert torch.equal(guided.x_hat, conditional.x_hat)
    assert torch.equal(guided.eps_hat, conditional.eps_hat)


@pytest.mark.parametrize("logsnr", [-5.0, 0.0, 4.0])
def test_inside_the_interval_guidance_is_on(logsnr: float) -> None:
    z_t, logsnr_t, cond, null = _inputs(logsnr=logsnr)
    inside = guided_denoiser(RecordingDenoiser(), cond, null, 4.0, logsnr_interval=(-5.0, 4.0))
    everywhere = guided_denoiser(RecordingDenoiser(), cond, null, 4.0)
    assert torch.equal(inside(z_t, logsnr_t).eps_hat, everywhere(z_t, logsnr_t).eps_hat)


def test_interval_per_row_when_rows_have_different_logsnr() -> None:
    denoiser = RecordingDenoiser()
    z_t, _, cond, null = _inputs()
    logsnr = torch.tensor([-8.0, -1.0, 1.0, 8.0])
    guided = guided_denoiser(denoiser, cond, null, 2.0, logsnr_interval=(-2.0, 2.0))(z_t, logsnr)
    conditional = guided_denoiser(denoiser, cond, null, 1.0)(z_t, logsnr)
    always = guided_denoiser(denoiser, cond, null, 2.0)(z_t, logsnr)
    torch.testing.assert_close(guided.eps_hat[[0, 3]], conditional.eps_hat[[0, 3]])
    torch.testing.assert_close(guided.eps_hat[[1, 2]], always.eps_hat[[1, 2]])
    torch.testing.assert_close(guided.x_hat[[0, 3]], conditional.x_hat[[0, 3]])


def test_null_condition_with_a_batch_of_one_is_broadcast() -> None:
    z_t, logsnr, cond, null = _inputs()
    broadcast = guided_denoiser(RecordingDenoiser(), cond, null[:1], 2.0)(z_t, logsnr)
    full = guided_denoiser(RecordingDenoiser(), cond, null, 2.0)(z_t, logsnr)
    assert torch.equal(broadcast.eps_hat, full.eps_hat)


def test_invalid_arguments() -> None:
    _, _, cond, null = _inputs()
    with pytest.raises(ValueError, match="does not match"):
        guided_denoiser(RecordingDenoiser(), cond, null[:3], 2.0)
    with pytest.raises(ValueError, match="lo <= hi"):
        guided_denoiser(RecordingDenoiser(), cond, null, 2.0, logsnr_interval=(1.0, -1.0))


# Two overlapping Gaussian classes, 3 standard deviations apart along each of 2 dimensions.
MIXTURE = GaussianMixtureOracle(
    means=torch.tensor([[-1.5, -1.5], [1.5, 1.5]]),
    stds=torch.ones(2, 2),
    weights=torch.tensor([0.5, 0.5]),
)


def mixture_denoiser(z_t: Tensor, logsnr: Tensor, cond: Tensor | None) -> Prediction:
    """The exact class-conditional denoiser (a component) and, for NULL, the exact unconditional
    one (the mixture): what a perfectly trained model with label dropout would learn."""
    assert cond is not None
    label = cond.reshape(-1, 1)
    preds = [MIXTURE.component(k).exact_denoiser(z_t, logsnr) for k in (0, 1)]
    unconditional = MIXTURE.exact_denoiser(z_t, logsnr)
    x_hat = torch.where(label == 0, preds[0].x_hat, preds[1].x_hat)
    eps_hat = torch.where(label == 0, preds[0].eps_hat, preds[1].eps_hat)
    x_hat = torch.where(label == NULL, unconditional.x_hat, x_hat)
    eps_hat = torch.where(label == NULL, unconditional.eps_hat, eps_hat)
    return Prediction(x_hat, eps_hat)


def test_large_guidance_concentrates_samples_on_the_conditioned_class() -> None:
    """Sanity: guidance pushes samples towards class 1 and away from class 0. Unguided (scale 0)
    about half the samples are nearer class 1's mean; conditional (scale 1) Φ(3/√2) ≈ 98 %;
    strongly guided (scale 4) essentially all."""
    num = 1000
    cond, null = torch.ones(num), torch.full((num,), NULL)
    noise = torch.randn(num, 2, generator=torch.Generator().manual_seed(0))
    stats = {}
    for scale in (0.0, 1.0, 4.0):
        denoise = guided_denoiser(mixture_denoiser, cond, null, scale)
        samples = sample(denoise, noise, schedule=LogSNRSchedule(), num_steps=32, sampler="ddim")
        to_class_1 = ((samples - MIXTURE.means[1]) ** 2).sum(1)
        to_class_0 = ((samples - MIXTURE.means[0]) ** 2).sum(1)
        stats[scale] = ((to_class_1 < to_class_0).float().mean().item(), to_class_1.mean().item())
    assert 0.4 < stats[0.0][0] < 0.6
    assert stats[4.0][0] > max(0.995, stats[1.0][0])
    assert stats[4.0][1] < 0.5 * stats[0.0][1]
