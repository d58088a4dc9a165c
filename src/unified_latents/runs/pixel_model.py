"""The pixel-model run kind: the pixel-diffusion baseline (UL-SPEC §10, "pixel diffusion").

The base model (same `LatentDiffusion`, network family, sigmoid-weighted loss, sampler and
training loop as on latents) is trained on images in [−1, 1] of `config.data`; there is no
autoencoder run and no latent cache, and sampling skips the decoder (the identity,
`objectives/pixel_space.py`). Held-out evaluation and sample grids are `GeneratorTask`'s; its
"base_elbo_bits_per_pixel" is then the base model's continuous ELBO of the images themselves
(truncated at λ_max, no discretisation), not of a latent, and there is no prior bound.

Runs from before this was its own kind are stored as kind "base" with a `pixel` group; they are
read as pixel-model runs (`runs/directory.py: upgrade_record`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from unified_latents.conditions import (
    ConditionSource,
    as_captions,
    check_class_count,
)
from unified_latents.data.containers import ImageDataset
from unified_latents.data.datasets import DataConfig, heldout_images, load_split, to_model_range
from unified_latents.data.stream import ImageBatches
from unified_latents.evaluation.base_model import HeldOut
from unified_latents.evaluation.network_summary import base_costs
from unified_latents.evaluation.run import EvaluateOptions, RunEvaluation
from unified_latents.objectives.latent_diffusion import BaseModelConfig
from unified_latents.objectives.pixel_space import PixelSpace
from unified_latents.runs.base_model import BaseEvalConfig, build_base_model
from unified_latents.runs.directory import load_run
from unified_latents.runs.generator_task import GeneratorTask, evaluate_generator
from unified_latents.runs.kind import GeneratorModels, KindBase, NetworkTable
from unified_latents.training.config import TrainConfig
from unified_latents.training.distributed import DistributedContext
from unified_latents.training.optim import OptimConfig

KIND = "pixel"


@dataclass(frozen=True, kw_only=True)
class PixelRunConfig:
    data: DataConfig = field(default_factory=DataConfig)  # images in [−1, 1] are the "latents"
    # λ_max of the base model on pixels [C]: the top of UL's decoder pixel schedule
    # (pixel_logsnr_max = 15), so pixel diffusion denoises as far as UL's decoder does. The
    # bottom is `model.logsnr_min` (−15), as for latents.
    logsnr_max: float = 15.0
    model: BaseModelConfig = field(default_factory=BaseModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: BaseEvalConfig = field(default_factory=BaseEvalConfig)

    def check_fields(self) -> None:
        if self.model.latent_normalization != "none":
            raise ValueError(
                "pixel-space runs diffuse images in [−1, 1]: set model.latent_normalization=none"
            )

    def identity(self) -> PixelSpace:
        """The identity "autoencoder" on this dataset's images."""
        return PixelSpace(self.data.channels, self.data.image_size, self.logsnr_max)


class IndexKeyed(ImageDataset):
    """`dataset` with (index, epoch) keys int64 [2] for labels: `BatchStream` passes an
    `epoch_indexed` dataset the index epoch · N + i, so caption conditions can draw the caption
    of image i in that epoch (conditions.py)."""

    epoch_indexed = True

    def __init__(self, dataset: ImageDataset) -> None:
        self.dataset = dataset
        self.class_names = dataset.class_names
        self.image_shape = dataset.image_shape

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        epoch, position = divmod(index, len(self.dataset))
        return self.dataset[position][0], torch.tensor([position, epoch])


def heldout_pixels(config: PixelRunConfig) -> HeldOut:
    """The first `eval.num_latents` test images in [−1, 1] and their condition keys."""
    images, keys = heldout_images(load_split(config.data, "test"), config.eval.num_latents)
    if config.model.condition.kind == "text-tokens":  # (index, epoch) keys, not labels
        indices = torch.arange(images.shape[0])
        keys = torch.stack([indices, torch.zeros_like(indices)], dim=1)
    return HeldOut(to_model_range(images), keys, "test images (pixel space)")


class PixelTask(ImageBatches, GeneratorTask):
    """The base model on images; the identity stands in for the autoencoder."""

    def __init__(self, config: PixelRunConfig, device: torch.device) -> None:
        self.config = config
        train_data: ImageDataset = load_split(config.data, "train", training=True)
        class_names = list(train_data.class_names)
        check_class_count(config.model.condition, class_names)
        captions = None
        if config.model.condition.kind == "text-tokens":  # batches carry (index, epoch) keys
            captions = as_captions(train_data), as_captions(load_split(config.data, "test"))
            train_data = IndexKeyed(train_data)
        self.train_data = train_data
        self.num_workers = config.data.num_workers
        conditions = ConditionSource(config.model.condition, class_names, *(captions or ()))
        identity = config.identity()
        model = build_base_model(config.model, identity)
        heldout = heldout_pixels(config)
        super().__init__(config.eval, model, identity, conditions, heldout, device)

    def inputs(self, batch: Any, device: torch.device) -> tuple[Tensor, Tensor]:
        images, keys = batch
        return to_model_range(images).to(device, non_blocking=True), keys.to(device)


class PixelModelKind(KindBase[PixelRunConfig]):
    """The pixel-diffusion baseline: `ul train pixel --preset fashion-mnist` (alias `ul
    train-base --preset pixel-fashion-mnist`)."""

    name = KIND
    description = "baseline: the base model trained directly on pixels (no autoencoder)"
    config_type = PixelRunConfig
    opens_as = "generator"

    def build_task(
        self, config: PixelRunConfig, context: DistributedContext, device: torch.device
    ) -> PixelTask:
        return PixelTask(config, device)

    def networks(self, config: PixelRunConfig) -> NetworkTable:
        shape = (config.data.channels, config.data.image_size, config.data.image_size)
        costs = base_costs(config.model, shape)
        return NetworkTable(costs, "pixel space", {"input_shape": list(shape)})

    def evaluate(
        self, run_dir: Path, step: int, device: torch.device, options: EvaluateOptions
    ) -> RunEvaluation:
        models = self.generator(run_dir, device, step)
        return evaluate_generator(
            models,
            models.config.data,
            heldout_pixels(models.config),
            options,
            run_dir=run_dir,
            step=step,
            autoencoder_run="none (pixel space)",
        )

    def generator(
        self, run_dir: Path, device: torch.device, step: int | None = None
    ) -> GeneratorModels:
        """The EMA base model, the identity "autoencoder", config and conditions."""
        config, loaded = load_run(run_dir, KIND, PixelRunConfig, step)
        identity = config.identity()
        base = build_base_model(config.model, identity)
        base.load_state_dict(loaded.ema)
        conditions = ConditionSource(
            config.model.condition, load_split(config.data, "test").class_names
        )
        return GeneratorModels(base.to(device).eval(), identity.to(device), config, conditions)
