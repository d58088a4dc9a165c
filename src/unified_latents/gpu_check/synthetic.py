"""Synthetic data and the network configs the GPU check trains: the paper-scale presets
(ImageNet-512, UL-SPEC §11) or, for `--cpu-smoke`, the same layouts at tiny widths on 64² images."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from unified_latents.data.datasets import to_model_range
from unified_latents.networks.encoder import EncoderConfig
from unified_latents.networks.uvit import UViTConfig
from unified_latents.networks.vit import ViTConfig
from unified_latents.objectives.terms import LossTerms
from unified_latents.runs.autoencoder import AutoencoderRunConfig, build_autoencoder
from unified_latents.runs.base_model import BaseRunConfig
from unified_latents.runs.presets_paper import autoencoder_imagenet_512, base_imagenet_512


def check_configs(smoke: bool) -> tuple[AutoencoderRunConfig, BaseRunConfig]:
    """The paper-scale stage-1 and base configs, or their tiny-width versions (64² images,
    4×4×4 latents) that keep every structural option: 2×2 patching, a deeper last encoder stage,
    the UViT's extra downsampling, dropout and the 2-level base ViT."""
    autoencoder, base = autoencoder_imagenet_512(), base_imagenet_512()
    if not smoke:
        return autoencoder, base
    model = replace(
        autoencoder.model,
        encoder=EncoderConfig(
            channels=(8, 16, 16, 16), blocks_per_stage=1, last_stage_blocks=2,
            latent_channels=4, patch_size=2,
        ),
        prior=ViTConfig(width=32, depth=1, heads=2, mlp_activation="gelu"),
        decoder=UViTConfig(
            channels=(8, 16, 16), blocks_per_stage=1, transformer_width=32, transformer_depth=1,
            heads=2, mlp_activation="gelu", patch_size=2, dropout=0.1,
            transformer_downsample=True,
        ),
    )  # fmt: skip
    network = ViTConfig(
        width=16, depth=2, heads=2, dropout=0.1, inner_widths=(32,), inner_depths=(1,)
    )
    small_base = replace(
        base.model, network=network, condition=replace(base.model.condition, num_classes=10)
    )
    return (
        replace(autoencoder, data=replace(autoencoder.data, image_size=64), model=model),
        replace(base, model=small_base),
    )


class SyntheticImages:
    """An infinite, resumable stream of random uint8 images and labels (a `BatchSource`)."""

    def __init__(
        self, batch_size: int, shape: tuple[int, int, int], num_classes: int, seed: int
    ) -> None:
        self.batch_size, self.shape, self.num_classes = batch_size, shape, num_classes
        self.seed, self.batch = seed, 0

    def __next__(self) -> tuple[Tensor, Tensor]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.batch)
        self.batch += 1
        images = torch.randint(0, 256, (self.batch_size, *self.shape), generator=generator)
        labels = torch.randint(0, max(1, self.num_classes), (self.batch_size,), generator=generator)
        return images.to(torch.uint8), labels

    def __iter__(self) -> SyntheticImages:
        return self

    def state_dict(self) -> dict[str, Any]:
        return {"batch": self.batch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.batch = int(state["batch"])


class SyntheticAutoencoderTask:
    """Stage 1 on synthetic images for the shared training loop; `wrapped_as` records the type
    of module the loop hands to `loss` (DistributedDataParallel under torchrun)."""

    plots: ClassVar[dict[str, tuple[str, ...]]] = {}
    progress_keys = ("loss",)

    def __init__(self, config: AutoencoderRunConfig) -> None:
        self.config = config
        self.model: nn.Module = build_autoencoder(config)
        data = config.data
        self.shape = (data.channels, data.image_size, data.image_size)
        self.loss_normalizer = float(data.channels * data.image_size**2)
        self.wrapped_as = ""

    def batches(
        self, micro_batch_size: int, seed: int, rank: int, world_size: int
    ) -> SyntheticImages:
        return SyntheticImages(micro_batch_size, self.shape, 0, seed * 1000 + rank)

    def loss(
        self, module: nn.Module, batch: Any, generator: torch.Generator, step: int
    ) -> LossTerms:
        self.wrapped_as = type(module).__name__
        images, _ = batch
        x = to_model_range(images).to(generator.device, non_blocking=True)
        terms: LossTerms = module(x, generator)
        return terms

    def summarize(self, means: Mapping[str, float]) -> dict[str, float]:
        return dict(means)

    def evaluate(self, ema: nn.Module, step: int, run_dir: Path) -> dict[str, float]:
        return {}
