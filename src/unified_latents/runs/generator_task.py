"""A base model as a training task for the shared loop (`training/loop.py`): what the base-model
run kind (`runs/base_model.py`, on cached latents) and the pixel-space baseline
(`runs/pixel_model.py`, on images) share: the loss, the training log, held-out ELBO bits (and the
stage-1 prior's bound where there is one) and the sample grid of each evaluation; and how both
evaluate a checkpoint (`evaluate_generator`, for `ul evaluate`)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor, nn

from unified_latents.conditions import ConditionSource, dataset_captions
from unified_latents.data.datasets import DataConfig, to_uint8
from unified_latents.diffusion.elbo import nats_to_bits
from unified_latents.evaluation.base_model import BaseSettings, HeldOut, evaluate_base
from unified_latents.evaluation.compute import TrainingCost
from unified_latents.evaluation.elbo import (
    NatsFunction,
    base_elbo_nats,
    elbo_bits,
    prior_bound_nats,
    scored_pixels,
)
from unified_latents.evaluation.run import (
    EvaluateOptions,
    RunEvaluation,
    run_cost,
    sampling_request,
)
from unified_latents.generation import context_frames, generate_images
from unified_latents.objectives.autoencoder import Autoencoder
from unified_latents.objectives.latent_diffusion import LatentDiffusion
from unified_latents.objectives.terms import LossTerms
from unified_latents.runs.kind import GeneratorModels
from unified_latents.visualize_video import save_pictures


class GeneratorSettings(BaseSettings, Protocol):
    """A base-model run's eval settings (`BaseEvalConfig`) as the task uses them."""

    @property
    def samples_per_class(self) -> int: ...
    @property
    def seed(self) -> int: ...


class GeneratorTask:
    """A base model for the shared loop, on latents of a frozen `autoencoder` (or, for pixels, the
    identity). Subclasses set up the data and call `__init__` with what evaluation needs; the
    autoencoder's decoder and prior are used only for sample grids and the comparison bound."""

    plots: ClassVar[dict[str, tuple[str, ...]]] = {
        "loss": ("loss", "elbo_nats"),
        "bits_per_pixel": ("base_elbo_bits_per_pixel", "prior_bound_bits_per_pixel"),
    }
    progress_keys = ("loss", "elbo_nats")

    def __init__(
        self,
        settings: GeneratorSettings,
        model: LatentDiffusion,
        autoencoder: Autoencoder,
        conditions: ConditionSource,
        heldout: HeldOut,
        device: torch.device,
    ) -> None:
        self.settings, self.model, self.conditions = settings, model, conditions
        self.autoencoder = autoencoder.to(device).eval().requires_grad_(False)
        self.heldout, self.device = heldout, device
        self.pixels = scored_pixels(model, autoencoder)
        self.loss_normalizer = float(math.prod(autoencoder.latent_shape))
        self._prior_bound: dict[str, float] | None = None

    def inputs(self, batch: Any, device: torch.device) -> tuple[Tensor, Tensor]:
        """(base-model inputs, condition keys) of a training batch, on `device`."""
        z_clean, keys = batch
        return z_clean.to(device), keys.to(device)

    def loss(
        self, module: nn.Module, batch: Any, generator: torch.Generator, step: int
    ) -> LossTerms:
        inputs, keys = self.inputs(batch, generator.device)
        return module(inputs, self.conditions.training(keys, generator), generator)

    def summarize(self, means: Mapping[str, float]) -> dict[str, float]:
        bits = float(nats_to_bits(means["elbo_nats"]))
        return {**means, "base_elbo_bits_per_pixel": bits / self.pixels["base_elbo"]}

    def _bits(self, functions: Mapping[str, NatsFunction]) -> dict[str, float]:
        return elbo_bits(
            functions,
            self.heldout.inputs,
            self.heldout.keys,
            passes=self.settings.elbo_passes,
            batch_size=self.settings.batch_size,
            seed=self.settings.seed,
            pixels=self.pixels,
            device=self.device,
        )

    def prior_bound(self) -> dict[str, float]:
        """The stage-1 prior's bound on the same held-out latents (computed once); nothing for
        latents without a prior (kl-vae, pixels)."""
        if not self.autoencoder.has_latent_prior:
            return {}
        if self._prior_bound is None:
            self._prior_bound = self._bits({"prior_bound": prior_bound_nats(self.autoencoder)})
        return self._prior_bound

    def evaluate(self, ema: nn.Module, step: int, run_dir: Path) -> dict[str, float]:
        assert isinstance(ema, LatentDiffusion)
        start = time.perf_counter()
        results = self._bits({"base_elbo": base_elbo_nats(ema, self.conditions)})
        results |= self.prior_bound()
        cond, columns = self.conditions.grid(self.settings.samples_per_class)
        num = columns * max(1, len(self.conditions.class_names))
        if ema.context_frames:  # frame prediction: the first held-out clips' context frames
            num, columns = min(8, self.heldout.inputs.shape[0]), 1
            cond = ema.frame_context(self.heldout.inputs[:num].to(self.device))
        generator = torch.Generator(device=self.device).manual_seed(self.settings.seed)
        images = generate_images(
            ema,
            self.autoencoder,
            cond,
            self.conditions,
            self.settings,
            num=num,
            generator=generator,
        )
        path = run_dir / "samples" / f"step_{step:08d}.png"
        save_pictures(to_uint8(images), path, columns, context_frames=context_frames(ema, images))
        results["eval_seconds"] = time.perf_counter() - start
        return results


def evaluate_generator(
    models: GeneratorModels,
    data: DataConfig,
    heldout: HeldOut,
    options: EvaluateOptions,
    *,
    run_dir: Path,
    step: int,
    autoencoder_run: str,
    costs: Sequence[TrainingCost] = (),
) -> RunEvaluation:
    """`evaluate_base` of a base-model or pixel run's checkpoint (`models`) on `data`'s test split
    and `heldout`; the training cost is `costs` (earlier stages) and the base model's up to
    `step`."""
    base, autoencoder, config, conditions = models
    if conditions.keyed_by_index:  # held-out ELBOs look captions up by dataset index
        captions = dataset_captions(data)
        conditions = ConditionSource(conditions.config, conditions.class_names, *captions)
    request = sampling_request(config.eval, conditions, options, data.name)
    evaluation = evaluate_base(base, autoencoder, conditions, data, heldout, request, options)
    described = {**request.description, "autoencoder_run": autoencoder_run}
    per_sample = evaluation.flops["base_training_per_sample"]
    base_cost = run_cost("base", run_dir, step, config.train.batch_size, per_sample)
    return RunEvaluation(evaluation, described, [*costs, base_cost])
