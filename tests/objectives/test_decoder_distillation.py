"""Progressive distillation of the decoder (objectives/decoder_distillation.py): the x-space target
is exactly what one DDIM step needs to land where two teacher steps land, the loss vanishes for
a student that is the two-step teacher (and for a student equal to an exact one-image teacher),
phases hand the student over to the teacher, and the distilled decoder takes N network calls."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
from torch import Tensor, nn

from unified_latents.config import ConfigError
from unified_latents.diffusion.process import Prediction, alpha_sigma, eps_from_x
from unified_latents.diffusion.schedules import LogSNRSchedule
from unified_latents.objectives.decoder_distillation import (
    DecoderDistillation,
    DistilledDecoder,
    ddim_decode,
    distillation_grid,
    phase_steps,
    student_steps_at,
    teacher_two_steps,
    truncated_snr_weight,
    two_step_target,
)
from unified_latents.objectives.unified_latents import UnifiedLatents
from unified_latents.runs.autoencoder import build_autoencoder
from unified_latents.runs.presets_tiny import autoencoder_tiny
from unified_latents.sampling.samplers import ddim_step, logsnr_grid

SCHEDULE = LogSNRSchedule(logsnr_min=-15.0, logsnr_max=15.0)


@pytest.fixture(autouse=True, scope="module")
def single_thread() -> Iterator[None]:
    """Toy networks on 8×8 images: extra intra-op threads only add synchronisation."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class GaussianDenoiser(nn.Module):
    """The exact denoiser E[x | z_t] of data x ~ N(μ, s² I): linear in z_t. s = 0 is data on
    the one image μ, whose denoiser is x̂ ≡ μ."""

    def __init__(self, mean: Tensor, std: float) -> None:
        super().__init__()
        self.mean, self.std = nn.Parameter(mean.clone()), std

    def forward(self, z_t: Tensor, logsnr: Tensor, *conditions: object) -> Prediction:
        alpha, sigma = (v.reshape(-1, 1, 1, 1) for v in alpha_sigma(logsnr))
        gain = alpha * self.std**2 / (alpha**2 * self.std**2 + sigma**2)
        x_hat = self.mean + gain * (z_t - alpha * self.mean)
        return Prediction(x_hat, eps_from_x(z_t, logsnr, x_hat))


class TwoStepTeacher(nn.Module):
    """A student that IS the target: two teacher DDIM steps on the grid, turned into x̃."""

    def __init__(self, teacher: nn.Module, steps: int) -> None:
        super().__init__()
        self.teacher, self.steps = teacher, steps

    def forward(self, z_t: Tensor, logsnr: Tensor, z: Tensor) -> Prediction:
        grid, midpoints = distillation_grid(SCHEDULE, self.steps, z_t.device)
        index = (grid[:-1, None] - logsnr[None]).abs().argmin(dim=0)
        logsnr_s, logsnr_mid = grid[index + 1], midpoints[index]

        def teacher(y: Tensor, level: Tensor) -> Prediction:
            return self.teacher(y, level, z)

        z_s = teacher_two_steps(teacher, z_t, logsnr, logsnr_mid, logsnr_s)
        x_hat = two_step_target(z_t, z_s, logsnr, logsnr_s)
        return Prediction(x_hat, eps_from_x(z_t, logsnr, x_hat))


def tiny_autoencoder() -> UnifiedLatents:
    torch.manual_seed(0)
    model = build_autoencoder(autoencoder_tiny())
    assert isinstance(model, UnifiedLatents)
    return model


def images(batch: int = 16) -> Tensor:
    return torch.rand(batch, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_phases_halve_down_to_the_target() -> None:
    assert phase_steps(16, 4) == (16, 8, 4)
    assert phase_steps(4, 4) == (4,) and phase_steps(12, 3) == (12, 6, 3)
    for initial, target in ((12, 4), (2, 4), (8, 0)):
        with pytest.raises(ValueError):
            phase_steps(initial, target)
    phases = (4, 2, 1)
    assert [student_steps_at(s, phases, 10) for s in (0, 9, 10, 19, 20, 500)] == [4, 4, 2, 2, 1, 1]


def test_truncated_snr_weight_is_max_of_snr_and_one() -> None:
    logsnr = torch.tensor([-15.0, -1.0, 0.0, 2.0])
    expected = torch.tensor([1.0, 1.0, 1.0, math.exp(2.0)])
    assert torch.allclose(truncated_snr_weight(logsnr), expected)


def test_the_student_grid_is_the_sampler_grid() -> None:
    grid, midpoints = distillation_grid(SCHEDULE, 4, torch.device("cpu"))
    assert torch.equal(grid, logsnr_grid(SCHEDULE, 4, torch.device("cpu")))
    assert torch.allclose(midpoints, logsnr_grid(SCHEDULE, 8, torch.device("cpu"))[1::2])
    assert bool((grid[:-1] < midpoints).all() and (midpoints < grid[1:]).all())


def test_one_ddim_step_to_the_target_lands_on_the_two_teacher_steps() -> None:
    generator = torch.Generator().manual_seed(0)
    z_t, z_s = (torch.randn(6, 1, 4, 4, generator=generator) for _ in range(2))
    logsnr_t = torch.tensor([-15.0, -8.0, -2.0, 0.0, 3.0, 7.0])
    logsnr_s = logsnr_t + torch.tensor([0.5, 2.0, 1.0, 4.0, 0.1, 8.0])
    target = two_step_target(z_t, z_s, logsnr_t, logsnr_s)
    step = ddim_step(z_t, Prediction(target, eps_from_x(z_t, logsnr_t, target)), logsnr_s)
    assert torch.allclose(step, z_s, atol=1e-4)


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_a_student_that_is_the_two_step_teacher_has_zero_loss(steps: int) -> None:
    model = DecoderDistillation(tiny_autoencoder(), steps)
    generator = torch.Generator().manual_seed(2)
    trained = model(images(), generator).loss.detach()
    model.student = TwoStepTeacher(model.teacher, steps)
    terms = model(images(), torch.Generator().manual_seed(2))
    assert float(trained.mean()) > 0 and float(terms.loss.abs().max()) < 1e-6
    assert bool((terms.student_steps == steps).all())


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_analytic_teachers(steps: int) -> None:
    """With an exact one-image teacher (x̂ ≡ μ) DDIM is exact: two steps equal one, so the
    student equal to the teacher already has zero loss. A Gaussian teacher (linear, s = 0.5)
    bends its path: one step of the teacher misses two, and the target corrects that."""
    autoencoder, mean = tiny_autoencoder(), torch.rand(1, 1, 8, 8) * 2 - 1
    autoencoder.decoder = GaussianDenoiser(mean, std=0.0)

    def loss(model: DecoderDistillation) -> Tensor:
        return model(images(), torch.Generator().manual_seed(3)).loss.detach()

    assert float(loss(DecoderDistillation(autoencoder, steps)).max()) < 1e-6 * 64
    autoencoder.decoder = GaussianDenoiser(mean, std=0.5)
    curved = DecoderDistillation(autoencoder, steps)
    assert float(loss(curved).mean()) > 1e-3
    curved.student = TwoStepTeacher(curved.teacher, steps)
    assert float(loss(curved).max()) < 1e-6


def test_only_the_student_trains_and_phases_hand_it_to_the_teacher() -> None:
    model = DecoderDistillation(tiny_autoencoder(), 4, teacher_checkpoint_step=40)
    assert int(model.teacher_checkpoint_step) == 40 and int(model.student_steps) == 4
    trainable = {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"student"}
    model.train()
    assert model.student.training and not model.teacher.training
    assert not model.autoencoder.training
    model(images(4), torch.Generator().manual_seed(0)).loss.mean().backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert any(p.grad is not None for p in model.student.parameters())
    with torch.no_grad():
        for parameter in model.student.parameters():
            parameter.add_(0.01)
    model.start_phase(4)  # the same phase (e.g. after a resume): nothing moves
    assert int(model.student_steps) == 4
    assert not all(
        torch.equal(a, b)
        for a, b in zip(model.teacher.parameters(), model.student.parameters(), strict=True)
    )
    model.start_phase(2)
    assert int(model.student_steps) == 2
    for a, b in zip(model.teacher.parameters(), model.student.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_the_distilled_decoder_takes_one_call_per_step(steps: int) -> None:
    mean, calls = torch.rand(1, 1, 8, 8) * 2 - 1, []
    exact = GaussianDenoiser(mean, std=0.0)

    def denoise(z_t: Tensor, logsnr: Tensor) -> Prediction:
        calls.append(float(logsnr[0]))
        return exact(z_t, logsnr)

    x = ddim_decode(denoise, torch.randn(3, 1, 8, 8), SCHEDULE, steps)
    assert torch.allclose(x, mean.expand(3, -1, -1, -1), atol=1e-5)
    assert calls == pytest.approx(logsnr_grid(SCHEDULE, steps, torch.device("cpu"))[:-1].tolist())


def test_the_distilled_decoder_is_an_autoencoder() -> None:
    autoencoder = tiny_autoencoder()
    decoder = DecoderDistillation(autoencoder, 2).distilled()
    assert isinstance(decoder, DistilledDecoder) and decoder.steps == 2
    assert decoder.latent_shape == autoencoder.latent_shape
    assert decoder.encoder is autoencoder.encoder
    x = images(4)
    generator = torch.Generator().manual_seed(0)
    assert decoder.reconstruct(x, num_steps=2, generator=generator).shape == x.shape
    assert torch.equal(decoder.encode(x), autoencoder.encode(x))
    with pytest.raises(ConfigError, match="DDIM"):
        decoder.decode(autoencoder.encode(x), num_steps=2, sampler="ancestral")
