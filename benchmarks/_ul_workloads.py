"""Our side of `throughput.py`: the default presets' stage-1 and stage-2 training tasks.

The loss of a step is the project's own task code (`AutoencoderTask.loss`, `BaseTask.loss`) on the
task's own batch stream, normalised as the training loop does; sampling goes through the project's
samplers (the stage-1 decoder; the stage-2 base model with the preset's guidance).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar, cast

import torch
from torch import Tensor, nn

from unified_latents.data.latent_cache import write_index, write_shard
from unified_latents.networks.denoiser import Denoiser
from unified_latents.objectives.unified_latents import UnifiedLatents
from unified_latents.runs.autoencoder import AutoencoderTask
from unified_latents.runs.base_model import BaseRunConfig, BaseTask
from unified_latents.sampling.pipeline import sample_latents

Task = TypeVar("Task", AutoencoderTask, BaseTask)


class TaskWorkload(Generic[Task]):
    """A training task's loss on its own batch stream (from the start, seed 0, one rank), as the
    training loop computes and normalises it."""

    def __init__(self, task: Task, generator: torch.Generator) -> None:
        self.task, self.generator = task, generator
        self.model = task.model.to(generator.device)
        self.batches = task.batches(task.config.train.batch_size, seed=0, rank=0, world_size=1)

    def loss(self, module: nn.Module, step: int) -> Tensor:
        terms = self.task.loss(module, next(self.batches), self.generator, step)
        terms.means()  # the loop reads these every step (a device sync, as in training)
        return terms.loss.float().mean() / self.task.loss_normalizer


class ULStage1(TaskWorkload[AutoencoderTask]):
    """Our stage 1: the `AutoencoderTask` on its real training stream."""

    def sampler(self, compiled: bool, num: int, steps: int) -> tuple[Callable[[], object], int]:
        model, device = self.task.model, self.generator.device
        assert isinstance(model, UnifiedLatents)  # the default preset's kind
        if compiled:
            model.decoder = cast(nn.Module, torch.compile(model.decoder))
        z_clean = torch.randn((num, *model.latent_shape), generator=self.generator, device=device)
        z_0 = model.add_encoder_noise(z_clean, self.generator)
        sampler = self.task.config.eval.sampler

        def run() -> Tensor:
            return model.decode(z_0, num_steps=steps, sampler=sampler, generator=self.generator)

        return run, steps + 1  # the samplers make one more call at λ_max (sampling/samplers.py)


class ULStage2(TaskWorkload[BaseTask]):
    """Our stage 2: the `BaseTask` on a latent cache of random latents (values do not change
    the compute), with the preset's guidance when sampling."""

    def sampler(self, compiled: bool, num: int, steps: int) -> tuple[Callable[[], object], int]:
        model, device, settings = self.task.model, self.generator.device, self.task.config.eval
        if compiled:
            model.denoiser = cast(Denoiser, torch.compile(model.denoiser))
        conditions = self.task.conditions
        labels = torch.arange(num) % max(1, len(conditions.class_names))
        cond = conditions.for_classes(labels)

        def run() -> Tensor:
            return sample_latents(
                model.denoise,
                latent_shape=model.latent_shape,
                schedule=model.schedule,
                cond=None if cond is None else cond.to(device),
                null_cond=conditions.null(num, device),
                num=num,
                guidance=settings.guidance,
                guidance_interval=settings.guidance_interval,
                num_steps=steps,
                sampler=settings.sampler,
                generator=self.generator,
                device=device,
            )

        return run, steps + 1


def random_latent_cache(
    directory: Path, latent_shape: tuple[int, ...], config: BaseRunConfig
) -> None:
    """Train and test splits of N(0, I) latents in the latent-cache format."""
    classes = max(1, config.model.condition.num_classes)
    count = 4 * config.train.batch_size
    for split in ("train", "test"):
        z_clean = torch.randn((count, *latent_shape), generator=torch.Generator().manual_seed(0))
        write_shard(directory / split, 0, z_clean, torch.arange(count) % classes)
        info = {"class_names": [f"class {c}" for c in range(classes)]}
        write_index(directory / split, [count], latent_shape, info)
