"""End-to-end (single-stage) UL as a training task: encoder, decoder and base model trained
together in one run of the shared loop (UL-SPEC §9, `objectives/single_stage.py`).

Held-out evaluation reports what the two-stage pipeline reports, with the same helpers: the base
model's unweighted ELBO on z_0 in bits/pixel (`elbo_bits`, stage 2; here it is also the latent's
rate), PSNR/SSIM of decoder reconstructions (`reconstruction_statistics`, stage 1) and a sample
grid, base model → ẑ → decoder (`generate_images`, stage 2).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from unified_latents.config import check_at_least
from unified_latents.data.datasets import DataConfig, load_split, to_model_range, to_uint8
from unified_latents.data.stream import BatchStream
from unified_latents.diffusion.elbo import nats_to_bits
from unified_latents.networks.conditioning import ConditionConfig
from unified_latents.objectives.single_stage import Scheme, SingleStageConfig, SingleStageLatents
from unified_latents.objectives.terms import LossTerms
from unified_latents.objectives.unified_latents import UnifiedLatents
from unified_latents.sampling.samplers import SamplerKind
from unified_latents.runs.autoencoder import heldout_images, reconstruction_statistics
from unified_latents.runs.base_model import base_elbo_nats, elbo_bits
from unified_latents.conditions import ConditionError, ConditionSource
from unified_latents.generation import DecoderInput, generate_images
from unified_latents.training.loop import TrainConfig
from unified_latents.training.optim import OptimConfig
from unified_latents.visualize import interleave, save_image_grid


@dataclass(frozen=True, kw_only=True)
class EndToEndEvalConfig:
    num_images: int = 256  # held-out images for the bits/pixel estimate
    elbo_passes: int = 4  # noise levels drawn per image for it
    num_reconstructions: int = 64
    samples_per_class: int = 4  # sample grid (unconditional: 4 × 10 samples)
    base_steps: int = 64
    decoder_steps: int = 32
    sampler: SamplerKind = "ancestral"
    guidance: float = 2.0
    guidance_interval: tuple[float, float] | None = None
    decoder_input: DecoderInput = "clean"  # or "noisy": α_0·ẑ + σ_0·ε (generation.py)
    decoder_sampler: SamplerKind | None = None  # None: `sampler` for the decoder too
    batch_size: int = 128
    seed: int = 1234

    def __post_init__(self) -> None:
        check_at_least(
            self,
            1,
            "num_images",
            "elbo_passes",
            "num_reconstructions",
            "samples_per_class",
            "base_steps",
            "decoder_steps",
            "batch_size",
        )


@dataclass(frozen=True, kw_only=True)
class EndToEndRunConfig:
    scheme: Scheme = "noise-augmented"  # or "shifted-decoder" (see objectives/single_stage.py)
    data: DataConfig = field(default_factory=DataConfig)
    model: SingleStageConfig = field(default_factory=SingleStageConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EndToEndEvalConfig = field(default_factory=EndToEndEvalConfig)


def build_end_to_end_model(config: EndToEndRunConfig) -> SingleStageLatents:
    return SingleStageLatents(
        config.model,
        config.scheme,
        image_channels=config.data.channels,
        image_size=config.data.image_size,
    )


def condition_source(condition: ConditionConfig, class_names: Sequence[str]) -> ConditionSource:
    """The base model's conditions; a class model must have as many classes as the dataset."""
    if condition.kind == "class" and condition.num_classes != len(class_names):
        raise ConditionError(
            f"the dataset has {len(class_names)} classes but model.base.condition.num_classes is "
            f"{condition.num_classes}; pass --set model.base.condition.num_classes="
            f"{len(class_names)} (or model.base.condition.kind=none)"
        )
    if condition.kind == "text-tokens":
        raise ConditionError(
            "single-stage training does not support model.base.condition.kind=text-tokens yet; "
            "train the two stages (ul train-autoencoder, ul train-base --preset emoji-text)"
        )
    return ConditionSource(condition, class_names)


@torch.no_grad()
def encode_images(
    autoencoder: UnifiedLatents, images: Tensor, batch_size: int, device: torch.device
) -> Tensor:
    """z_clean [N, c, h, w] of uint8 images, on the CPU."""
    latents = [
        autoencoder.encode(to_model_range(images[start : start + batch_size]).to(device)).cpu()
        for start in range(0, images.shape[0], batch_size)
    ]
    return torch.cat(latents)


class EndToEndTask:
    """Single-stage UL for the shared loop."""

    plots: ClassVar[dict[str, tuple[str, ...]]] = {
        "loss": ("loss", "rate_nats", "distortion_nats"),
        "bits_per_pixel": ("rate_bits_per_pixel", "base_elbo_bits_per_pixel"),
        "psnr": ("psnr_db",),
    }
    progress_keys = ("loss", "rate_bits_per_pixel", "psnr_db")

    def __init__(self, config: EndToEndRunConfig) -> None:
        self.config = config
        self.model: SingleStageLatents = build_end_to_end_model(config)
        self.train_data = load_split(config.data, "train", training=True)
        self.test_images, self.test_labels = heldout_images(
            load_split(config.data, "test"), config.eval.num_images
        )
        self.class_names = list(self.train_data.class_names)
        self.conditions = condition_source(config.model.base.condition, self.class_names)
        self.pixels = config.data.image_size**2
        self.loss_normalizer = float(config.data.channels * self.pixels)

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
        images, labels = batch
        x = to_model_range(images).to(generator.device, non_blocking=True)
        cond = self.conditions.training(labels.to(generator.device), generator)
        rate_weight = self.model.config.autoencoder.rate_weight(step)
        return module(x, cond, generator, rate_weight=rate_weight)

    def summarize(self, means: Mapping[str, float]) -> dict[str, float]:
        """`rate_bits_per_pixel` is the rate of the latent the decoder saw (z_aug, averaged
        over λ_aug); the bits of z_0 are the eval's `base_elbo_bits_per_pixel`."""
        bits = float(nats_to_bits(means["rate_nats"]))
        return {**means, "rate_bits_per_pixel": bits / self.pixels}

    def evaluate(self, ema: nn.Module, step: int, run_dir: Path) -> dict[str, float]:
        assert isinstance(ema, SingleStageLatents)
        start = time.perf_counter()
        settings = self.config.eval
        device = next(ema.parameters()).device
        latents = encode_images(ema.autoencoder, self.test_images, settings.batch_size, device)
        results = elbo_bits(
            {"base_elbo": base_elbo_nats(ema.base, self.conditions)},
            latents,
            self.test_labels,
            passes=settings.elbo_passes,
            batch_size=settings.batch_size,
            seed=settings.seed,
            pixels=self.pixels,
            device=device,
        )
        subset = self.test_images[: settings.num_reconstructions]
        stats, reconstructions = reconstruction_statistics(
            ema.autoencoder,
            subset,
            num_steps=settings.decoder_steps,
            sampler=settings.sampler,
            batch_size=settings.batch_size,
            seed=settings.seed,
        )
        results |= stats
        grid = interleave(subset[:32], reconstructions[:32])
        save_image_grid(grid, run_dir / "reconstructions" / f"step_{step:08d}.png", 8, scale=2)
        cond, columns = self.conditions.grid(settings.samples_per_class)
        images = generate_images(
            ema.base,
            ema.autoencoder,
            cond,
            self.conditions,
            settings,
            num=columns * max(1, len(self.class_names)),
            generator=torch.Generator(device=device).manual_seed(settings.seed),
        )
        save_image_grid(
            to_uint8(images), run_dir / "samples" / f"step_{step:08d}.png", columns, scale=2
        )
        results["eval_seconds"] = time.perf_counter() - start
        return results
