"""Stage 1 as a training task: a UL autoencoder on an image dataset (UL-SPEC §4–§7).

Held-out evaluation reports the rate (bits/image, bits/pixel = bits/image ÷ (H·W) of the model's
input, bits per latent dimension) from the prior's bound, the decoder loss, and PSNR/SSIM of
decoder reconstructions, and writes an original/reconstruction grid.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from unified_latents.data.datasets import (
    DataConfig,
    ImageDataset,
    load_split,
    to_model_range,
    to_uint8,
)
from unified_latents.data.stream import BatchStream
from unified_latents.diffusion.elbo import nats_to_bits
from unified_latents.metrics.image_quality import psnr, ssim
from unified_latents.objectives.terms import LossTerms
from unified_latents.objectives.unified_latents import UnifiedLatents, UnifiedLatentsConfig
from unified_latents.sampling.samplers import SamplerKind
from unified_latents.training.loop import TrainConfig
from unified_latents.training.optim import OptimConfig
from unified_latents.visualize import interleave, save_image_grid


@dataclass(frozen=True, kw_only=True)
class AutoencoderEvalConfig:
    num_images: int = 256  # held-out images for the rate and loss estimates
    rate_passes: int = 4  # noise levels drawn per image for the rate estimate
    num_reconstructions: int = 64  # decoded during training (ul reconstruct takes --num)
    decoder_steps: int = 32
    sampler: SamplerKind = "ancestral"
    batch_size: int = 128
    seed: int = 1234


@dataclass(frozen=True, kw_only=True)
class AutoencoderRunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: UnifiedLatentsConfig = field(default_factory=UnifiedLatentsConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: AutoencoderEvalConfig = field(default_factory=AutoencoderEvalConfig)


def build_autoencoder(config: AutoencoderRunConfig) -> UnifiedLatents:
    return UnifiedLatents(
        config.model, image_channels=config.data.channels, image_size=config.data.image_size
    )


def heldout_images(dataset: ImageDataset, count: int) -> tuple[Tensor, Tensor]:
    """The first `count` held-out images (uint8) and labels: a fixed evaluation set."""
    count = min(count, len(dataset))
    items = [dataset[index] for index in range(count)]
    images = torch.stack([image for image, _ in items])
    labels = torch.tensor([label for _, label in items], dtype=torch.long)
    return images, labels


def rate_statistics(
    model: UnifiedLatents, images: Tensor, passes: int, batch_size: int, seed: int
) -> dict[str, float]:
    """Bits from the prior's bound on held-out images, averaged over `passes` noise draws."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    rates, distortions = [], []
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            x = to_model_range(images[start : start + batch_size]).to(device)
            for _ in range(passes):
                terms = model(x, generator)
                rates.append(terms.rate_nats)
                distortions.append(terms.distortion_nats)
    rate_nats = torch.cat(rates).mean().item()
    height, width = images.shape[-2:]
    bits = float(nats_to_bits(rate_nats))
    return {
        "bits_per_image": bits,
        "bits_per_pixel": bits / (height * width),
        "bits_per_latent_dim": bits / math.prod(model.latent_shape),
        "distortion_nats": torch.cat(distortions).mean().item(),
    }


def reconstruction_statistics(
    model: UnifiedLatents,
    images: Tensor,
    *,
    num_steps: int,
    sampler: SamplerKind,
    batch_size: int,
    seed: int,
) -> tuple[dict[str, float], Tensor]:
    """PSNR/SSIM (dB / unitless, on [−1, 1] data) of decoder reconstructions, and the images."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    outputs = []
    for start in range(0, images.shape[0], batch_size):
        x = to_model_range(images[start : start + batch_size]).to(device)
        outputs.append(
            model.reconstruct(x, num_steps=num_steps, sampler=sampler, generator=generator).cpu()
        )
    reconstructions = to_uint8(torch.cat(outputs))
    originals = to_model_range(images)
    quantised = to_model_range(reconstructions)
    stats = {
        "psnr_db": psnr(quantised, originals).mean().item(),
        "ssim": ssim(quantised, originals).mean().item(),
    }
    return stats, reconstructions


class AutoencoderTask:
    """Stage 1 for the shared loop."""

    plots: ClassVar[dict[str, tuple[str, ...]]] = {
        "loss": ("loss", "rate_nats", "distortion_nats"),
        "bits_per_pixel": ("bits_per_pixel",),
        "psnr": ("psnr_db",),
    }
    progress_keys = ("loss", "bits_per_pixel", "psnr_db")

    def __init__(self, config: AutoencoderRunConfig) -> None:
        self.config = config
        self.model: UnifiedLatents = build_autoencoder(config)
        self.train_data = load_split(config.data, "train")
        self.test_images, _ = heldout_images(
            load_split(config.data, "test"), config.eval.num_images
        )
        self.loss_normalizer = float(config.data.channels * config.data.image_size**2)

    def batches(self, micro_batch_size: int, seed: int, rank: int, world_size: int) -> BatchStream:
        return BatchStream(
            self.train_data,
            batch_size=micro_batch_size,
            seed=seed,
            rank=rank,
            world_size=world_size,
            num_workers=self.config.data.num_workers,
        )

    def loss(self, module: nn.Module, batch: Any, generator: torch.Generator) -> LossTerms:
        images, _ = batch
        x = to_model_range(images).to(generator.device, non_blocking=True)
        return module(x, generator)

    def summarize(self, means: Mapping[str, float]) -> dict[str, float]:
        pixels = self.config.data.image_size**2
        bits = float(nats_to_bits(means["rate_nats"]))
        return {**means, "bits_per_pixel": bits / pixels}

    def evaluate(self, ema: nn.Module, step: int, run_dir: Path) -> dict[str, float]:
        assert isinstance(ema, UnifiedLatents)
        start = time.perf_counter()
        settings = self.config.eval
        results = rate_statistics(
            ema, self.test_images, settings.rate_passes, settings.batch_size, settings.seed
        )
        subset = self.test_images[: settings.num_reconstructions]
        stats, reconstructions = reconstruction_statistics(
            ema,
            subset,
            num_steps=settings.decoder_steps,
            sampler=settings.sampler,
            batch_size=settings.batch_size,
            seed=settings.seed,
        )
        results |= stats
        grid = interleave(subset[:32], reconstructions[:32])
        save_image_grid(grid, run_dir / "reconstructions" / f"step_{step:08d}.png", 8, scale=2)
        results["eval_seconds"] = time.perf_counter() - start
        return results
