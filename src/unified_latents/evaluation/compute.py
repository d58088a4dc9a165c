"""What each kind of run costs in FLOPs (UL-SPEC §10), for `ul evaluate` and compute-matched
comparisons.

Per image (or sample), counted by `metrics/flops.py` on the models' own methods, so every stage-1
kind is covered: forward passes, training = 3 × the training-loss forward, one reconstruction and
one sampling run (network passes counted by running the real sampler and guidance wrapper on a
stub). `TrainingCost` turns a per-image training cost into the total a run has consumed so far:
optimizer steps × global batch × training FLOPs per image. Periodic evaluations during training
and (two-stage) the one-off encoding of the dataset into the latent cache are not counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from unified_latents.conditions import ConditionSource
from unified_latents.diffusion.process import Prediction
from unified_latents.diffusion.schedules import LogSNRSchedule
from unified_latents.generation import SamplingSettings
from unified_latents.metrics.flops import forward_flops, forward_flops_per_example
from unified_latents.objectives.autoencoder import Autoencoder
from unified_latents.objectives.latent_diffusion import LatentDiffusion
from unified_latents.objectives.single_stage import SingleStageLatents
from unified_latents.sampling.guidance import guided_denoiser
from unified_latents.sampling.samplers import DenoiseFn, SamplerKind, sample


def network_passes(
    schedule: LogSNRSchedule,
    *,
    num_steps: int,
    sampler: SamplerKind,
    guidance: float | None = None,
    guidance_interval: tuple[float, float] | None = None,
) -> int:
    """Examples one network processes to draw ONE sample: the real sampler (and, with
    `guidance`, the real classifier-free-guidance wrapper) driven by a stub that only counts the
    rows it is given. `num_steps + 1` without guidance; guided steps count twice."""
    rows = 0

    def stub(z_t: Tensor, logsnr: Tensor, cond: Tensor | None = None) -> Prediction:
        nonlocal rows
        rows += z_t.shape[0]
        return Prediction(z_t, torch.zeros_like(z_t))

    one = torch.zeros(1)
    denoise: DenoiseFn = stub
    if guidance is not None:
        denoise = guided_denoiser(stub, one, one, guidance, guidance_interval)
    generator = torch.Generator().manual_seed(0)
    noise = torch.zeros(1, 1)
    sample(
        denoise, noise, schedule=schedule, num_steps=num_steps, sampler=sampler, generator=generator
    )
    return rows


class _Call(nn.Module):
    """Lets `forward_flops` count any computation, e.g. a loss evaluation or a decoding run."""

    def __init__(self, function: Callable[[], object]) -> None:
        super().__init__()
        self.function = function

    def forward(self) -> object:
        return self.function()


def call_flops(function: Callable[[], object]) -> float:
    """FLOPs (linear layers, convolutions, attention) of one call of `function`."""
    return float(forward_flops(_Call(function)))


def _one_image(model: Autoencoder) -> Tensor:
    device = next(model.parameters()).device
    return torch.zeros(1, *model.image_shape, device=device)  # [1, C, H, W] or [1, C, T, H, W]


def stage1_forward_flops(model: Autoencoder) -> float:
    """One stage-1 training-loss forward per image (encoder + prior + one decoder evaluation);
    training costs 3 × this (spec §10)."""
    x = _one_image(model)
    generator = torch.Generator(device=x.device).manual_seed(0)
    return call_flops(lambda: model(x, generator))


def autoencoder_flops(
    model: Autoencoder, *, decoder_steps: int, sampler: SamplerKind
) -> dict[str, float]:
    """FLOPs per image of a stage-1 model: the encoder, the prior (UL: one prior evaluation of
    the rate), one training-loss forward, training = 3 × that, and one reconstruction (encoder +
    a full decoder sampling run)."""
    x = _one_image(model)
    generator = torch.Generator(device=x.device).manual_seed(0)
    encoder = call_flops(lambda: model.encode(x))
    prior = 0.0
    if model.has_latent_prior:
        z = torch.zeros(1, *model.latent_shape, device=x.device)  # [1, c, h, w]
        prior = call_flops(lambda: model.rate(z, generator))
    forward = stage1_forward_flops(model)
    reconstruction = call_flops(
        lambda: model.reconstruct(x, num_steps=decoder_steps, sampler=sampler, generator=generator)
    )
    return {
        "encoder_forward_per_image": encoder,
        "prior_forward_per_image": prior,
        "decoder_forward_per_image": forward - encoder - prior,  # the rest of one loss forward
        "stage1_forward_per_image": forward,
        "stage1_training_per_image": 3.0 * forward,
        "reconstruction_per_image": reconstruction,
    }


def base_flops(
    base: LatentDiffusion,
    autoencoder: Autoencoder,
    conditions: ConditionSource,
    settings: SamplingSettings,
) -> dict[str, float]:
    """Base-model FLOPs per sample: forward, training (3 × forward) and one sampling run
    (base model with guidance where active, then the decoder)."""
    device = next(base.parameters()).device
    cond = conditions.for_classes(torch.zeros(1, dtype=torch.long))
    cond = None if cond is None else cond.to(device)
    z = torch.zeros(1, *base.latent_shape, device=device)  # [1, c, h, w]
    logsnr = torch.zeros(1, device=device)
    forward = forward_flops_per_example(base.denoiser, z, logsnr, cond)
    generator = torch.Generator(device=device).manual_seed(0)
    decoding = call_flops(
        lambda: autoencoder.decode(
            z,
            num_steps=settings.decoder_steps,
            sampler=settings.decoder_sampler or settings.sampler,
            generator=generator,
        )
    )
    base_passes = network_passes(
        base.schedule,
        num_steps=settings.base_steps,
        sampler=settings.sampler,
        guidance=None if cond is None else settings.guidance,
        guidance_interval=settings.guidance_interval,
    )
    return {
        "base_forward_per_sample": forward,
        "base_training_per_sample": 3.0 * forward,
        "sampling_per_sample": base_passes * forward + decoding,
        "sampling_base_model_per_sample": base_passes * forward,
        "sampling_decoder_per_sample": decoding,
    }


def end_to_end_flops(
    model: SingleStageLatents, conditions: ConditionSource, settings: SamplingSettings
) -> dict[str, float]:
    """FLOPs per image of an end-to-end run (spec §9): its training step is ONE forward of the
    single-stage loss (encoder + one base-model evaluation of the restricted ELBO + one decoder
    evaluation), training = 3 × that; a reconstruction; and a sample (base model → decoder),
    counted as for a base run."""
    autoencoder = model.autoencoder
    x = _one_image(autoencoder)
    generator = torch.Generator(device=x.device).manual_seed(0)
    cond = conditions.for_classes(torch.zeros(1, dtype=torch.long))
    cond = None if cond is None else cond.to(x.device)
    encoder = call_flops(lambda: autoencoder.encode(x))
    forward = call_flops(lambda: model(x, cond, generator))
    sampling = base_flops(model.base, autoencoder, conditions, settings)
    base = sampling.pop("base_forward_per_sample")
    del sampling["base_training_per_sample"]  # the base model is trained as part of the step
    reconstruction = call_flops(
        lambda: autoencoder.reconstruct(
            x, num_steps=settings.decoder_steps, sampler=settings.sampler, generator=generator
        )
    )
    return {
        "encoder_forward_per_image": encoder,
        "base_forward_per_image": base,
        "decoder_forward_per_image": forward - encoder - base,
        "end_to_end_forward_per_image": forward,
        "end_to_end_training_per_image": 3.0 * forward,
        "reconstruction_per_image": reconstruction,
        **sampling,
    }


@dataclass(frozen=True, kw_only=True)
class TrainingCost:
    """The training FLOPs one run has consumed: `step` optimizer steps, each on a global batch of
    `batch_size` images (or latents) at `flops_per_image` (3 × forward)."""

    part: str  # "stage1", "base" or "end_to_end"
    run_dir: str
    step: int
    batch_size: int
    flops_per_image: float

    @property
    def flops(self) -> float:
        return float(self.step * self.batch_size) * self.flops_per_image

    def record(self) -> dict[str, Any]:
        return {
            "run_dir": self.run_dir,
            "step": self.step,
            "global_batch_size": self.batch_size,
            "images_seen": self.step * self.batch_size,
            "training_flops_per_image": self.flops_per_image,
            "training_flops": self.flops,
        }


TRAINING_NOTE = (
    "optimizer steps × global batch × training FLOPs per image (3 × forward, spec §10); "
    "periodic evaluations and the one-off encoding of the latent cache are not included"
)


def training_compute(costs: Sequence[TrainingCost]) -> tuple[dict[str, Any], dict[str, float]]:
    """eval.json's `training` section (every part and the total) and the FLOP totals for its
    `flops` table: `training_total` is everything this model's training consumed (for a base run
    on latents: stage 1 up to the checkpoint its latents came from, plus stage 2)."""
    total = sum(cost.flops for cost in costs)
    section = {
        "parts": {cost.part: cost.record() for cost in costs},
        "total_flops": total,
        "measured_as": TRAINING_NOTE,
    }
    flops = {"training_total": total}
    if len(costs) > 1:
        flops |= {f"training_total_{cost.part}": cost.flops for cost in costs}
    return section, flops
