"""A few-step UL decoder by progressive distillation (issue 19; beyond the paper).

Method: Salimans & Ho, "Progressive Distillation for Fast Sampling of Diffusion Models", ICLR 2022
(arXiv 2202.00512), Algorithm 2, applied to the diffusion decoder p(x | z_0) of a trained UL
autoencoder (UL-SPEC §6). The encoder, prior and original decoder stay frozen; only a copy of the
decoder (the student, initialised from the teacher's EMA weights) trains.

One phase teaches a student with N steps to match, with ONE deterministic DDIM step, TWO DDIM steps
of its teacher, which samples with 2N steps on the same grid. The grid is the one the library
samples with (`sampling/samplers.py: logsnr_grid` over the decoder's pixel schedule), so the
student's training times are exactly its inference times: t_i = 1 − i/N, i = 0 … N−1, and the
teacher's midpoint is t_i − 1/(2N). For a data image x with latent z_0 (frozen encoder + the λ_0
encoder noise, as the decoder was trained):

    z_t   = α_t x + σ_t ε                               (λ_t = λ(t_i), i uniform, stratified)
    z_t'  = DDIM_teacher(z_t → λ_mid),  z_t'' = DDIM_teacher(z_t' → λ_s)        (no gradient)
    x̃     = (z_t'' − (σ_s/σ_t) z_t) / (α_s − (σ_s/σ_t) α_t)                     (the x-space target)
    L     = w(λ_t) · Σ_pixels (x̃ − x̂_student(z_t, λ_t, z_0))²,   w(λ) = max(e^λ, 1)

x̃ is the clean image for which one DDIM step from z_t lands exactly on the teacher's z_t''; the
weighting is the paper's "truncated SNR" (max(‖x − x̂‖², ‖ε − ε̂‖²) in its Section 4). After a
phase the student becomes the teacher (η ← θ) and N halves, down to the target step count.

Inference (`DistilledDecoder.decode`): N student DDIM steps; the clean prediction of the last step
(at t = 1/N, which jumps to λ_max) is the image, so N steps cost N network evaluations. The
library's `sample` would make one more call at λ_max, which changes x by about σ(λ_max) ≈ 5e-4.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from unified_latents.config import ConfigError
from unified_latents.diffusion.elbo import sum_over_dims
from unified_latents.diffusion.process import Prediction, alpha_sigma, broadcast_to, diffuse
from unified_latents.diffusion.schedules import LogSNRSchedule
from unified_latents.diffusion.weighting import stratified_uniform
from unified_latents.objectives.autoencoder import Autoencoder
from unified_latents.objectives.terms import LossTerms
from unified_latents.objectives.unified_latents import Stage1Terms, UnifiedLatents, randn
from unified_latents.sampling.samplers import DenoiseFn, SamplerKind, ddim_step, logsnr_grid


def phase_steps(initial_steps: int, target_steps: int) -> tuple[int, ...]:
    """The student's step count in each phase: initial, initial/2, …, target (halving)."""
    if not 1 <= target_steps <= initial_steps:
        raise ValueError(
            f"need 1 ≤ target_steps ≤ initial_steps, got {target_steps}, {initial_steps}"
        )
    steps = [initial_steps]
    while steps[-1] > target_steps:
        if steps[-1] % 2:
            break
        steps.append(steps[-1] // 2)
    if steps[-1] != target_steps:
        raise ValueError(
            f"initial_steps={initial_steps} must be target_steps={target_steps} times a power of 2"
        )
    return tuple(steps)


def student_steps_at(step: int, phases: tuple[int, ...], steps_per_phase: int) -> int:
    """The student's step count at optimizer step `step`; the last phase runs on for good."""
    return phases[min(step // steps_per_phase, len(phases) - 1)]


def truncated_snr_weight(logsnr: Tensor) -> Tensor:
    """w(λ) = max(SNR, 1) = max(e^λ, 1) on the x-space error (Salimans & Ho 2022, §4)."""
    return torch.exp(logsnr.float().clamp(min=0.0))


def two_step_target(z_t: Tensor, z_s: Tensor, logsnr_t: Tensor, logsnr_s: Tensor) -> Tensor:
    """x̃ with DDIM(z_t, x̃ → λ_s) = z_s: (z_s − (σ_s/σ_t) z_t) / (α_s − (σ_s/σ_t) α_t).

    The denominator is α_s (1 − e^{(λ_t − λ_s)/2}) > 0 for λ_s > λ_t; written with expm1 so that
    it stays accurate for close noise levels."""
    _, sigma_t = alpha_sigma(logsnr_t)
    alpha_s, sigma_s = alpha_sigma(logsnr_s)
    ratio = sigma_s / sigma_t
    denominator = alpha_s * -torch.expm1(0.5 * (logsnr_t.float() - logsnr_s.float()))
    numerator = z_s.float() - broadcast_to(ratio, z_t) * z_t.float()
    return numerator / broadcast_to(denominator, z_t)


def teacher_two_steps(
    teacher: DenoiseFn, z_t: Tensor, logsnr_t: Tensor, logsnr_mid: Tensor, logsnr_s: Tensor
) -> Tensor:
    """Two deterministic DDIM steps of the teacher, λ_t → λ_mid → λ_s; returns z_s."""
    z_mid = ddim_step(z_t, teacher(z_t, logsnr_t), logsnr_mid)
    return ddim_step(z_mid, teacher(z_mid, logsnr_mid), logsnr_s)


def distillation_grid(
    schedule: LogSNRSchedule, student_steps: int, device: torch.device
) -> tuple[Tensor, Tensor]:
    """(λ of the student's grid [N + 1], λ of the teacher's midpoints [N]): the student's grid is
    exactly the one it samples with; the teacher's 2N-step grid adds t_i − 1/(2N)."""
    student = logsnr_grid(schedule, student_steps, device)
    teacher = logsnr_grid(schedule, 2 * student_steps, device)
    return student, teacher[1::2]


@dataclass(frozen=True)
class DistillationTerms(LossTerms):
    """Per-example [B]: `loss` = w(λ_t)·Σ(x̃ − x̂)² (a weighted squared error, not nats), the
    unweighted mean squared x-space error per pixel, and the student's step count (logged)."""

    target_mse: Tensor
    student_steps: Tensor


def ddim_decode(
    denoise: DenoiseFn, noise: Tensor, schedule: LogSNRSchedule, num_steps: int
) -> Tensor:
    """N deterministic DDIM steps from x_1 = `noise` on the sampler's grid; returns the clean
    prediction of the last step (N network evaluations; module docstring)."""
    logsnrs = logsnr_grid(schedule, num_steps, noise.device)
    z = noise.float()
    batch = noise.shape[0]
    x_hat = z
    for i in range(num_steps):
        prediction = denoise(z, logsnrs[i].repeat(batch))
        x_hat = prediction.x_hat.float()
        if i + 1 < num_steps:
            z = ddim_step(z, prediction, logsnrs[i + 1].repeat(batch))
    return x_hat


class DecoderDistillation(nn.Module):
    """The trainable state of a distillation run: the frozen autoencoder (encoder, prior and the
    original decoder), the current teacher and the student. `student_steps` (a buffer, so that
    checkpoints and resumption carry it) is the step count the student is trained for."""

    student_steps: Tensor
    teacher_checkpoint_step: Tensor

    def __init__(
        self, autoencoder: UnifiedLatents, initial_steps: int, teacher_checkpoint_step: int = 0
    ) -> None:
        """`teacher_checkpoint_step`: the autoencoder run's checkpoint the weights came from
        (kept as a buffer, for provenance and compute accounting)."""
        super().__init__()
        self.autoencoder = autoencoder.requires_grad_(False)
        self.teacher = copy.deepcopy(autoencoder.decoder).requires_grad_(False)
        self.student = copy.deepcopy(autoencoder.decoder).requires_grad_(True)
        self.register_buffer("student_steps", torch.tensor(initial_steps, dtype=torch.int64))
        step = torch.tensor(teacher_checkpoint_step, dtype=torch.int64)
        self.register_buffer("teacher_checkpoint_step", step)
        self.train()

    def train(self, mode: bool = True) -> DecoderDistillation:
        """Only the student follows `mode`: the frozen networks always run in eval mode."""
        super().train(mode)
        self.autoencoder.eval()
        self.teacher.eval()
        return self

    @torch.no_grad()
    def start_phase(self, student_steps: int) -> None:
        """Entering a new phase: the student becomes the teacher (η ← θ) and trains for
        `student_steps`; a no-op within a phase (also right after a resume)."""
        if int(self.student_steps) != student_steps:
            self.teacher.load_state_dict(self.student.state_dict())
            self.student_steps.fill_(student_steps)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> DistillationTerms:
        """The distillation loss (module docstring) for images x [B, C, H, W] in [−1, 1]."""
        batch, steps = x.shape[0], int(self.student_steps)
        ae = self.autoencoder
        with torch.no_grad():
            z_0 = ae.add_encoder_noise(ae.encode(x), generator)
        grid, midpoints = distillation_grid(ae.pixel_schedule, steps, x.device)
        u = stratified_uniform(batch, generator=generator, device=x.device)
        index = (u * steps).long().clamp(max=steps - 1)  # transition t_i → t_{i+1}, uniform in i
        logsnr_t, logsnr_s, logsnr_mid = grid[index], grid[index + 1], midpoints[index]
        z_t = diffuse(x, logsnr_t, randn(x, generator))

        def teacher(z: Tensor, logsnr: Tensor) -> Prediction:
            return self.teacher(z, logsnr, z_0)

        with torch.no_grad():
            z_s = teacher_two_steps(teacher, z_t, logsnr_t, logsnr_mid, logsnr_s)
            target = two_step_target(z_t, z_s, logsnr_t, logsnr_s)
        x_hat = self.student(z_t, logsnr_t, z_0).x_hat.float()
        squared_error = sum_over_dims((target - x_hat) ** 2)
        return DistillationTerms(
            loss=truncated_snr_weight(logsnr_t) * squared_error,
            target_mse=squared_error.detach() / x[0].numel(),
            student_steps=torch.full_like(squared_error, float(steps)).detach(),
        )

    def distilled(self) -> DistilledDecoder:
        """The autoencoder that decodes with the student at its step count."""
        return DistilledDecoder(self.autoencoder, self.student, int(self.student_steps))


class DistilledDecoder(Autoencoder):
    """A UL autoencoder whose decoder is a distilled student: encoding, encoder noise and the
    prior's rate are the teacher autoencoder's; `decode` runs N student DDIM steps (default: the
    steps it was distilled for). `forward` returns the teacher's stage-1 terms, so the rate (the
    prior's bound) is measured as for the autoencoder run; its `distortion_nats` is the original
    decoder's loss."""

    default_sampler: ClassVar[SamplerKind] = "ddim"  # the sampler the student was trained for

    def __init__(self, autoencoder: UnifiedLatents, student: nn.Module, steps: int) -> None:
        super().__init__()
        self.autoencoder, self.student, self.steps = autoencoder, student, steps
        self.image_channels, self.image_size = autoencoder.image_channels, autoencoder.image_size
        self.latent_channels = autoencoder.latent_channels
        self.latent_size = autoencoder.latent_size

    @property
    def latent_logsnr_max(self) -> float:
        return self.autoencoder.latent_logsnr_max

    @property
    def encoder(self) -> nn.Module:
        """The teacher's encoder (`runs/kind.py: with_decoder` compares encoders)."""
        encoder: nn.Module = self.autoencoder.encoder
        return encoder

    def encode(self, x: Tensor) -> Tensor:
        return self.autoencoder.encode(x)

    def add_encoder_noise(self, z_clean: Tensor, generator: torch.Generator | None) -> Tensor:
        return self.autoencoder.add_encoder_noise(z_clean, generator)

    def rate(self, z_clean: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        return self.autoencoder.rate(z_clean, generator)

    def forward(
        self, x: Tensor, generator: torch.Generator | None = None, rate_weight: float = 1.0
    ) -> Stage1Terms:
        return self.autoencoder(x, generator, rate_weight)

    @torch.no_grad()
    def decode(
        self,
        z: Tensor,
        *,
        num_steps: int,
        sampler: SamplerKind = "ddim",
        generator: torch.Generator | None = None,
        progress: bool = False,
    ) -> Tensor:
        """x from x_1 ~ N(0, I) (drawn from `generator`) in `num_steps` student DDIM steps."""
        if sampler != "ddim":
            raise ConfigError(
                f"a distilled decoder samples with DDIM, the sampler it was trained to match "
                f"(got {sampler!r}); use --sampler ddim or leave it out"
            )
        ae = self.autoencoder
        shape = (z.shape[0], *ae.image_shape)
        noise = torch.randn(shape, generator=generator, device=z.device)

        def denoise(x_t: Tensor, logsnr: Tensor) -> Prediction:
            return self.student(x_t, logsnr, z)

        return ddim_decode(denoise, noise, ae.pixel_schedule, num_steps)
