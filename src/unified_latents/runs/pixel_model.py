"""Stage 2 in pixel space: the pixel-diffusion baseline (UL-SPEC §10, "pixel diffusion").

The base model (same `LatentDiffusion`, network family, sigmoid-weighted loss, sampler and
training loop as on latents) is trained on images in [−1, 1] of `config.pixel.data`; there is no
autoencoder run and no latent cache, and sampling skips the decoder (the identity,
`objectives/pixel_space.py`). Held-out evaluation and sample grids are `BaseTask`'s; its
"base_elbo_bits_per_pixel" is then the base model's continuous ELBO of the images themselves
(truncated at λ_max, no discretisation), not of a latent, and there is no prior bound.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from unified_latents.data.containers import ImageDataset
from unified_latents.data.datasets import load_split, to_model_range
from unified_latents.data.stream import BatchStream
from unified_latents.networks.conditioning import ConditionConfig
from unified_latents.objectives.latent_diffusion import LatentDiffusion
from unified_latents.objectives.pixel_space import PixelSpace
from unified_latents.objectives.terms import LossTerms
from unified_latents.runs.autoencoder import heldout_images
from unified_latents.runs.base_model import BaseRunConfig, BaseTask, build_base_model
from unified_latents.conditions import ConditionError, ConditionSource, as_captions
from unified_latents.training.checkpoint import LoadedCheckpoint


def check_class_count(condition: ConditionConfig, class_names: list[str]) -> None:
    if condition.kind == "class" and condition.num_classes != len(class_names):
        raise ConditionError(
            f"the dataset has {len(class_names)} classes but model.condition.num_classes is "
            f"{condition.num_classes}; pass --set model.condition.num_classes={len(class_names)}"
        )


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


class PixelTask(BaseTask):
    """`BaseTask` with images for latents. It sets the attributes `BaseTask.__init__` sets, from
    the image dataset instead of a latent cache (so it does not call that initializer)."""

    def __init__(self, config: BaseRunConfig, device: torch.device) -> None:
        if config.pixel is None:
            raise ValueError("PixelTask needs a pixel-space config (BaseRunConfig.pixel)")
        data = self.data_config = config.pixel.data
        self.config = config
        self.autoencoder = config.pixel.identity().to(device)
        self.train_data = load_split(data, "train", training=True)
        test_data = load_split(data, "test")
        images, self.test_labels = heldout_images(test_data, config.eval.num_latents)
        self.test_latents = to_model_range(images)  # [N, C, H, W] in [−1, 1]
        self.class_names = list(self.train_data.class_names)
        check_class_count(config.model.condition, self.class_names)
        captions = None
        if config.model.condition.kind == "text-tokens":  # batches carry (index, epoch) keys
            captions = as_captions(self.train_data), as_captions(test_data)
            self.train_data = IndexKeyed(self.train_data)
            indices = torch.arange(self.test_latents.shape[0])
            self.test_labels = torch.stack([indices, torch.zeros_like(indices)], dim=1)
        self.conditions = ConditionSource(
            config.model.condition, self.class_names, *(captions or ())
        )
        if config.model.latent_normalization != "none":
            raise ValueError(
                "pixel-space runs diffuse images in [−1, 1]: set model.latent_normalization=none"
            )
        self.model = build_base_model(config, self.autoencoder)
        self.pixels = data.image_size**2
        self.loss_normalizer = float(math.prod(self.autoencoder.latent_shape))
        self.device = device
        self._prior_bound = None  # stays unused: pixels have no prior (`has_latent_prior`)

    def batches(self, micro_batch_size: int, seed: int, rank: int, world_size: int) -> BatchStream:
        return BatchStream(
            self.train_data,
            batch_size=micro_batch_size,
            seed=seed,
            rank=rank,
            world_size=world_size,
            num_workers=self.data_config.num_workers,
        )

    def loss(
        self, module: nn.Module, batch: Any, generator: torch.Generator, step: int
    ) -> LossTerms:
        images, labels = batch
        x = to_model_range(images).to(generator.device, non_blocking=True)
        cond = self.conditions.training(labels.to(generator.device), generator)
        return module(x, cond, generator)


def load_pixel_generator(
    config: BaseRunConfig, loaded: LoadedCheckpoint, device: torch.device
) -> tuple[LatentDiffusion, PixelSpace, BaseRunConfig, ConditionSource]:
    """The EMA base model of a pixel-space run, the identity "autoencoder", config, conditions."""
    if config.pixel is None:
        raise ValueError("not a pixel-space run (BaseRunConfig.pixel is unset)")
    identity = config.pixel.identity()
    base = build_base_model(config, identity)
    base.load_state_dict(loaded.ema)
    class_names = load_split(config.pixel.data, "test").class_names
    conditions = ConditionSource(config.model.condition, class_names)
    return base.to(device).eval(), identity.to(device), config, conditions
