"""Stage 1 as a training task: a UL autoencoder on an image dataset (UL-SPEC §4–§7).

Held-out evaluation reports the rate (bits/image, bits/pixel = bits/image ÷ (H·W) of the model's
input, bits per latent dimension) from the prior's bound, the decoder loss, and PSNR/SSIM of
decoder reconstructions, and writes an original/reconstruction grid.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from unified_latents.config import check_at_least
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
from unified_latents.objectives.autoencoder import Autoencoder, ObjectiveConfig
from unified_latents.objectives.registry import build_stage1_model
from unified_latents.objectives.terms import LossTerms
from unified_latents.objectives.unified_latents import UnifiedLatentsConfig
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

    def __post_init__(self) -> None:
        check_at_least(
            self,
            1,
            "num_images",
            "rate_passes",
            "num_reconstructions",
            "decoder_steps",
            "batch_size",
        )


@dataclass(frozen=True, kw_only=True)
class AutoencoderRunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: UnifiedLatentsConfig = field(default_factory=UnifiedLatentsConfig)
    # Which stage-1 objective: UL or a baseline/ablation (objectives/registry.py).
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: AutoencoderEvalConfig = field(default_factory=AutoencoderEvalConfig)


def build_autoencoder(config: AutoencoderRunConfig) -> Autoencoder:
    return build_stage1_model(
        config.model, config.objective, config.data.channels, config.data.image_size
    )


# Terms whose nats become bits in reports: `rate_nats` (by contract the latent's bits under the
# model's own prior) as bits_*; a KL to N(0, I) that is no such rate (kl-vae) only as kl_bits_*.
BITS_TERMS = {"rate_nats": "", "kl_nats": "kl_"}


def bits_report(means: Mapping[str, float], pixels: int, latent_dims: int) -> dict[str, float]:
    """bits per image, per pixel (÷ H·W) and per latent dimension of each term that has them."""
    report: dict[str, float] = {}
    for term, prefix in BITS_TERMS.items():
        if term in means:
            bits = float(nats_to_bits(means[term]))
            report[f"{prefix}bits_per_image"] = bits
            report[f"{prefix}bits_per_pixel"] = bits / pixels
            report[f"{prefix}bits_per_latent_dim"] = bits / latent_dims
    return report


def heldout_images(dataset: ImageDataset, count: int) -> tuple[Tensor, Tensor]:
    """The first `count` held-out images (uint8) and labels: a fixed evaluation set."""
    count = min(count, len(dataset))
    items = [dataset[index] for index in range(count)]
    images = torch.stack([image for image, _ in items])
    labels = torch.tensor([label for _, label in items], dtype=torch.long)
    return images, labels


def rate_statistics(
    model: Autoencoder, images: Tensor, passes: int, batch_size: int, seed: int
) -> dict[str, float]:
    """Held-out means of the model's named loss terms over `passes` noise draws, and the bits
    that apply to its kind (`bits_report`): the prior's bound for UL, a KL for kl-vae."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    values: dict[str, list[Tensor]] = {}
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            x = to_model_range(images[start : start + batch_size]).to(device)
            for _ in range(passes):
                terms = model(x, generator)
                for term in dataclasses.fields(terms):
                    values.setdefault(term.name, []).append(getattr(terms, term.name))
    means = {name: torch.cat(parts).mean().item() for name, parts in values.items()}
    del means["loss"]
    height, width = images.shape[-2:]
    return means | bits_report(means, height * width, math.prod(model.latent_shape))


def reconstruction_statistics(
    model: Autoencoder,
    images: Tensor,
    *,
    num_steps: int,
    sampler: SamplerKind,
    batch_size: int,
    seed: int,
    progress: bool = False,
) -> tuple[dict[str, float], Tensor]:
    """PSNR/SSIM (dB / unitless, on [−1, 1] data) of decoder reconstructions, and the images."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    outputs = []
    bar = tqdm(total=images.shape[0], desc="reconstruct", unit="img", disable=not progress)
    for start in range(0, images.shape[0], batch_size):
        x = to_model_range(images[start : start + batch_size]).to(device)
        outputs.append(
            model.reconstruct(x, num_steps=num_steps, sampler=sampler, generator=generator).cpu()
        )
        bar.update(x.shape[0])
    bar.close()
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
        "bits_per_pixel": ("bits_per_pixel", "kl_bits_per_pixel"),
        "psnr": ("psnr_db",),
    }
    progress_keys = ("loss", "bits_per_pixel", "psnr_db")

    def __init__(self, config: AutoencoderRunConfig) -> None:
        self.config = config
        self.model: Autoencoder = build_autoencoder(config)
        self.train_data = load_split(config.data, "train", training=True)
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

    def loss(
        self, module: nn.Module, batch: Any, generator: torch.Generator, step: int
    ) -> LossTerms:
        images, _ = batch
        x = to_model_range(images).to(generator.device, non_blocking=True)
        return module(x, generator, rate_weight=self.config.model.rate_weight(step))

    def summarize(self, means: Mapping[str, float]) -> dict[str, float]:
        pixels = self.config.data.image_size**2
        report = bits_report(means, pixels, math.prod(self.model.latent_shape))
        return {**means, **{key: v for key, v in report.items() if key.endswith("per_pixel")}}

    def evaluate(self, ema: nn.Module, step: int, run_dir: Path) -> dict[str, float]:
        assert isinstance(ema, Autoencoder)
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
