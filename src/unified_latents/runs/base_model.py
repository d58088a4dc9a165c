"""Stage 2 as a training task: the base model on cached latents of a frozen UL autoencoder.

Held-out evaluation reports the base model's unweighted ELBO in bits (the paper's "latent bpd,
base model") next to the stage-1 prior's bound on the same latents, and writes a sample grid
(base model → ẑ → decoder → image) with the configured guidance.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from unified_latents.config import check_at_least
from unified_latents.data.datasets import to_uint8
from unified_latents.data.latent_cache import Keys, LatentCache, LatentStream
from unified_latents.diffusion.elbo import nats_to_bits
from unified_latents.networks.conditioning import ConditionConfig
from unified_latents.objectives.autoencoder import Autoencoder
from unified_latents.objectives.latent_diffusion import BaseModelConfig, LatentDiffusion
from unified_latents.objectives.terms import LossTerms
from unified_latents.sampling.samplers import SamplerKind
from unified_latents.conditions import Captions, ConditionError, ConditionSource
from unified_latents.generation import DecoderInput, generate_images
from unified_latents.runs.pixel_space import PixelSpaceConfig
from unified_latents.training.loop import TrainConfig
from unified_latents.training.optim import OptimConfig
from unified_latents.training.task import BatchSource
from unified_latents.visualize import save_image_grid


@dataclass(frozen=True, kw_only=True)
class BaseEvalConfig:
    num_latents: int = 1000  # held-out latents for the ELBO estimates
    elbo_passes: int = 2  # noise levels per latent
    samples_per_class: int = 4  # grid during training (unconditional: 4 × 10 samples)
    base_steps: int = 64
    decoder_steps: int = 32
    sampler: SamplerKind = "ancestral"
    guidance: float = 2.0
    guidance_interval: tuple[float, float] | None = None
    decoder_input: DecoderInput = "clean"  # or "noisy": α_0·ẑ + σ_0·ε (generation.py)
    decoder_sampler: SamplerKind | None = None  # None: `sampler` for the decoder too
    batch_size: int = 250
    seed: int = 1234

    def __post_init__(self) -> None:
        check_at_least(
            self,
            1,
            "num_latents",
            "elbo_passes",
            "samples_per_class",
            "base_steps",
            "decoder_steps",
            "batch_size",
        )


@dataclass(frozen=True, kw_only=True)
class BaseRunConfig:
    autoencoder_run: str = ""  # the stage-1 run directory (frozen encoder/decoder, λ_0)
    # Set instead of autoencoder_run: pixel-space diffusion on images (runs/pixel_model.py).
    pixel: PixelSpaceConfig | None = None
    model: BaseModelConfig = field(default_factory=BaseModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: BaseEvalConfig = field(default_factory=BaseEvalConfig)


def latent_cache_dir(autoencoder_run: Path) -> Path:
    return autoencoder_run / "latents"


def build_base_model(config: BaseRunConfig, autoencoder: Autoencoder) -> LatentDiffusion:
    """λ_max is the autoencoder's λ_0 (from its checkpoint), never a base-model setting."""
    return LatentDiffusion(
        config.model,
        autoencoder.latent_shape,
        autoencoder.latent_logsnr_max,
        noise_in_latent_units=autoencoder.noisy_latents,
    )


@torch.no_grad()
def elbo_bits(
    losses: Mapping[str, Any],
    latents: Tensor,
    labels: Tensor,
    *,
    passes: int,
    batch_size: int,
    seed: int,
    pixels: int,
    device: torch.device,
) -> dict[str, float]:
    """Average a per-example nats function over held-out latents; report bits/pixel."""
    generator = torch.Generator(device=device).manual_seed(seed)
    results: dict[str, float] = {}
    for name, function in losses.items():
        values = []
        for start in range(0, latents.shape[0], batch_size):
            z = latents[start : start + batch_size].to(device)
            y = labels[start : start + batch_size].to(device)
            values += [function(z, y, generator) for _ in range(passes)]
        bits = float(nats_to_bits(torch.cat(values).mean().item()))
        results[f"{name}_bits_per_pixel"] = bits / pixels
    return results


NatsFunction = Callable[[Tensor, Tensor, torch.Generator], Tensor]
"""(z_clean [B, ...], labels [B], generator) → per-example nats [B]."""


def base_elbo_nats(model: LatentDiffusion, conditions: ConditionSource) -> NatsFunction:
    """The base model's unweighted ELBO (+ terminal KL) with the true, undropped condition."""

    def base_nats(z: Tensor, labels: Tensor, generator: torch.Generator) -> Tensor:
        return model(z, conditions.evaluation(labels), generator, drop_labels=False).elbo_nats

    return base_nats


def prior_bound_nats(autoencoder: Autoencoder) -> NatsFunction:
    """The stage-1 prior's bound L_z = L_diff + L_T (spec §5) on the same latents."""

    def prior_nats(z: Tensor, _: Tensor, generator: torch.Generator) -> Tensor:
        diffusion, terminal = autoencoder.rate(z, generator)
        return diffusion + terminal

    return prior_nats


class BaseTask:
    """Stage 2 for the shared loop; the autoencoder stays frozen (only its decoder and prior are
    used, for sample grids and the comparison bound)."""

    plots: ClassVar[dict[str, tuple[str, ...]]] = {
        "loss": ("loss", "elbo_nats"),
        "bits_per_pixel": ("base_elbo_bits_per_pixel", "prior_bound_bits_per_pixel"),
    }
    progress_keys = ("loss", "elbo_nats")

    def __init__(
        self,
        config: BaseRunConfig,
        autoencoder: Autoencoder,
        cache_dir: Path,
        device: torch.device,
        captions: tuple[Captions, Captions] | None = None,
    ) -> None:
        """`captions`: the captions of the encoded train and test splits ("text-tokens"
        conditioning); cached latents look theirs up by dataset index (data/latent_cache.py)."""
        self.config = config
        self.autoencoder = autoencoder.to(device).eval().requires_grad_(False)
        self.train_cache = LatentCache(cache_dir / "train")
        test_cache = LatentCache(cache_dir / "test")
        self.class_names: list[str] = list(self.train_cache.info.get("class_names", []))
        train_captions, test_captions = captions or (None, None)
        self.conditions = ConditionSource(
            config.model.condition, self.class_names, train_captions, test_captions
        )
        self.keys: Keys = "indices" if self.conditions.keyed_by_index else "labels"
        if self.conditions.keyed_by_index:
            self.conditions.require_captions()
        self.test_latents, self.test_labels = test_cache.first(config.eval.num_latents, self.keys)
        self.model = build_base_model(config, autoencoder)
        if self.model.normalized:  # from the EMA encoder's cached latents (resume restores them)
            statistics = self.train_cache.statistics()
            self.model.set_latent_statistics(statistics.mean, statistics.std)
        self.pixels = autoencoder.image_size**2
        self.loss_normalizer = float(math.prod(autoencoder.latent_shape))
        self.device = device
        self._prior_bound: dict[str, float] | None = None

    def batches(self, micro_batch_size: int, seed: int, rank: int, world_size: int) -> BatchSource:
        return LatentStream(
            self.train_cache, micro_batch_size, seed, rank, world_size, keys=self.keys
        )

    def loss(
        self, module: nn.Module, batch: Any, generator: torch.Generator, step: int
    ) -> LossTerms:
        z_clean, labels = (tensor.to(generator.device) for tensor in batch)
        return module(z_clean, self.conditions.training(labels, generator), generator)

    def summarize(self, means: Mapping[str, float]) -> dict[str, float]:
        bits = float(nats_to_bits(means["elbo_nats"]))
        return {**means, "base_elbo_bits_per_pixel": bits / self.pixels}

    def prior_bound(self) -> dict[str, float]:
        """The stage-1 prior's bound on the same held-out latents (computed once); nothing for
        latents without a prior (kl-vae, pixels)."""
        if not self.autoencoder.has_latent_prior:
            return {}
        if self._prior_bound is None:
            settings = self.config.eval
            self._prior_bound = elbo_bits(
                {"prior_bound": prior_bound_nats(self.autoencoder)},
                self.test_latents,
                self.test_labels,
                passes=settings.elbo_passes,
                batch_size=settings.batch_size,
                seed=settings.seed,
                pixels=self.pixels,
                device=self.device,
            )
        return self._prior_bound

    def evaluate(self, ema: nn.Module, step: int, run_dir: Path) -> dict[str, float]:
        assert isinstance(ema, LatentDiffusion)
        start = time.perf_counter()
        settings = self.config.eval
        results = elbo_bits(
            {"base_elbo": base_elbo_nats(ema, self.conditions)},
            self.test_latents,
            self.test_labels,
            passes=settings.elbo_passes,
            batch_size=settings.batch_size,
            seed=settings.seed,
            pixels=self.pixels,
            device=self.device,
        )
        results |= self.prior_bound()
        cond, columns = self.conditions.grid(settings.samples_per_class)
        generator = torch.Generator(device=self.device).manual_seed(settings.seed)
        images = generate_images(
            ema,
            self.autoencoder,
            cond,
            self.conditions,
            settings,
            num=columns * max(1, len(self.class_names)),
            generator=generator,
        )
        save_image_grid(
            to_uint8(images), run_dir / "samples" / f"step_{step:08d}.png", columns, scale=2
        )
        results["eval_seconds"] = time.perf_counter() - start
        return results


def check_condition(condition: ConditionConfig, cache: LatentCache) -> None:
    """The class count of a class-conditional model must match the cached dataset's labels."""
    classes = len(cache.info.get("class_names", []))
    if condition.kind == "class" and condition.num_classes != classes:
        raise ConditionError(
            f"the dataset has {classes} classes but model.condition.num_classes is "
            f"{condition.num_classes}; pass --set model.condition.num_classes={classes}"
        )
