"""The end-to-end run kind (single-stage UL, UL-SPEC §9, `objectives/single_stage.py`): encoder,
decoder and base model trained together in one run of the shared loop; its config, training
task, loading and evaluation (`runs/kind.py`).

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
from torch import nn

from unified_latents.conditions import ConditionError, ConditionSource, check_class_count
from unified_latents.config import check_at_least
from unified_latents.data.datasets import (
    DataConfig,
    load_split,
    to_model_range,
    to_uint8,
)
from unified_latents.diffusion.elbo import nats_to_bits
from unified_latents.evaluation.elbo import base_elbo_nats, elbo_bits
from unified_latents.evaluation.end_to_end import evaluate_end_to_end
from unified_latents.evaluation.reconstruction import encode_images
from unified_latents.evaluation.run import (
    EvaluateOptions,
    RunEvaluation,
    run_cost,
    sampling_request,
)
from unified_latents.generation import (
    SamplingConfig,
    generate_images,
)
from unified_latents.networks.conditioning import ConditionConfig
from unified_latents.objectives.single_stage import Scheme, SingleStageConfig, SingleStageLatents
from unified_latents.objectives.terms import LossTerms
from unified_latents.runs.autoencoder import HeldOutImageTask
from unified_latents.runs.directory import load_run
from unified_latents.runs.kind import AutoencoderModels, GeneratorModels, KindBase, NetworkTable
from unified_latents.training.checkpoint import LoadedCheckpoint
from unified_latents.training.config import TrainConfig
from unified_latents.training.distributed import DistributedContext
from unified_latents.training.optim import OptimConfig
from unified_latents.visualize import save_image_grid

KIND = "end-to-end"


@dataclass(frozen=True, kw_only=True)
class EndToEndEvalConfig(SamplingConfig):
    num_images: int = 256  # held-out images for the bits/pixel estimate
    elbo_passes: int = 4  # noise levels drawn per image for it
    num_reconstructions: int = 64
    batch_size: int = 128

    def __post_init__(self) -> None:
        super().__post_init__()
        check_at_least(self, 1, "num_images", "elbo_passes", "num_reconstructions")


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
    check_class_count(condition, class_names, "model.base.condition")
    if condition.kind == "text-tokens":
        raise ConditionError(
            "single-stage training does not support model.base.condition.kind=text-tokens yet; "
            "train the two stages (ul train autoencoder, ul train base --preset emoji-text)"
        )
    return ConditionSource(condition, class_names)


class EndToEndTask(HeldOutImageTask):
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
        self.load_images(config.data, config.eval.num_images)
        self.class_names = list(self.train_data.class_names)
        self.conditions = condition_source(config.model.base.condition, self.class_names)
        self.pixels = config.data.image_size**2

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
        results |= self.reconstructions(ema.autoencoder, settings, run_dir, step)
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


def _load(
    run_dir: Path, device: torch.device, step: int | None
) -> tuple[SingleStageLatents, EndToEndRunConfig, LoadedCheckpoint]:
    config, loaded = load_run(run_dir, KIND, EndToEndRunConfig, step)
    model = build_end_to_end_model(config)
    model.load_state_dict(loaded.ema)
    return model.to(device).eval(), config, loaded


def load_end_to_end_model(
    run_dir: Path, device: torch.device, step: int | None = None
) -> tuple[SingleStageLatents, EndToEndRunConfig, ConditionSource]:
    """The EMA model of an end-to-end run (encoder, decoder and base model, in eval mode) of its
    newest checkpoint (or that of `step`), its config and condition source."""
    model, config, _ = _load(run_dir, device, step)
    class_names = load_split(config.data, "test").class_names
    conditions = condition_source(config.model.base.condition, class_names)
    return model, config, conditions


class EndToEndKind(KindBase[EndToEndRunConfig]):
    """Single-stage UL: `ul train end-to-end` (alias `ul train-end-to-end`)."""

    name = KIND
    description = "single stage: encoder, decoder and base model trained together"
    config_type = EndToEndRunConfig
    opens_as = "generator"

    def default_run_dir(self, preset: str, config: EndToEndRunConfig) -> Path:
        return Path("runs") / f"end-to-end-{preset}-{config.scheme}"

    def build_task(
        self, config: EndToEndRunConfig, context: DistributedContext, device: torch.device
    ) -> EndToEndTask:
        return EndToEndTask(config)

    def networks(self, config: EndToEndRunConfig) -> NetworkTable:
        return NetworkTable([], "single stage: no network table yet")

    def evaluate(
        self, run_dir: Path, step: int, device: torch.device, options: EvaluateOptions
    ) -> RunEvaluation:
        model, config, conditions = load_end_to_end_model(run_dir, device, step)
        request = sampling_request(config.eval, conditions, options, config.data.name)
        evaluation = evaluate_end_to_end(model, config.data, conditions, request, options)
        described = {"scheme": config.scheme, **request.description}
        per_image = evaluation.flops["end_to_end_training_per_image"]
        cost = run_cost("end_to_end", run_dir, step, config.train.batch_size, per_image)
        return RunEvaluation(evaluation, described, [cost])

    def generator(
        self, run_dir: Path, device: torch.device, step: int | None = None
    ) -> GeneratorModels:
        """The EMA base model and autoencoder: the same pair a two-stage base run yields."""
        model, config, conditions = load_end_to_end_model(run_dir, device, step)
        return GeneratorModels(model.base, model.autoencoder, config, conditions)

    def autoencoder(
        self, run_dir: Path, device: torch.device, step: int | None = None
    ) -> AutoencoderModels:
        """Its encoder and decoder (the base model is the prior)."""
        model, config, loaded = _load(run_dir, device, step)
        return AutoencoderModels(model.autoencoder, config, loaded)
