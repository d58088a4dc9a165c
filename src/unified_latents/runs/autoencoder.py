"""The autoencoder run kind (stage 1, UL-SPEC §4–§7): a UL autoencoder (or a baseline, see
`objectives/registry.py`) trained on an image dataset; its config, training task, loading and
evaluation (`runs/kind.py`).

Held-out evaluation reports the rate (bits/image, bits/pixel = bits/image ÷ (H·W) of the model's
input, bits per latent dimension) from the prior's bound, the decoder loss, and PSNR/SSIM of
decoder reconstructions, and writes an original/reconstruction grid.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor, nn

from unified_latents.config import check_at_least
from unified_latents.data.datasets import (
    DataConfig,
    clip_frames,
    heldout_images,
    load_split,
    to_model_range,
)
from unified_latents.data.stream import ImageBatches
from unified_latents.evaluation.autoencoder import evaluate_autoencoder
from unified_latents.evaluation.network_summary import autoencoder_costs
from unified_latents.evaluation.reconstruction import (
    bits_report,
    rate_statistics,
    reconstruction_statistics,
)
from unified_latents.evaluation.run import EvaluateOptions, RunEvaluation, run_cost
from unified_latents.objectives.autoencoder import Autoencoder, ObjectiveConfig
from unified_latents.objectives.registry import build_stage1_model
from unified_latents.objectives.terms import LossTerms
from unified_latents.objectives.unified_latents import UnifiedLatentsConfig
from unified_latents.runs.directory import load_run
from unified_latents.runs.kind import AutoencoderModels, C, KindBase, NetworkTable
from unified_latents.sampling.samplers import SamplerKind
from unified_latents.training.config import TrainConfig
from unified_latents.training.distributed import DistributedContext
from unified_latents.training.optim import OptimConfig
from unified_latents.visualize_video import save_comparison

KIND = "autoencoder"


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
    data = config.data
    return build_stage1_model(
        config.model, config.objective, data.channels, data.image_size, clip_frames(data)
    )


class ReconstructionSettings(Protocol):
    """The evaluation settings a task's reconstructions during training take."""

    @property
    def num_reconstructions(self) -> int: ...
    @property
    def decoder_steps(self) -> int: ...
    @property
    def sampler(self) -> SamplerKind: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def seed(self) -> int: ...


class HeldOutImageTask(ImageBatches):
    """What a task that trains an autoencoder on images shares (this kind and end-to-end): the
    train split, the first held-out test images and labels, the loss normaliser (dimensions per
    image), and the PSNR/SSIM of reconstructions with their grid during training."""

    test_images: Tensor  # uint8 [N, C, H, W] (clips: [N, C, T, H, W])
    test_labels: Tensor  # [N]
    loss_normalizer: float

    def load_images(self, data: DataConfig, num_heldout: int) -> None:
        self.train_data = load_split(data, "train", training=True)
        self.num_workers = data.num_workers
        self.test_images, self.test_labels = heldout_images(load_split(data, "test"), num_heldout)
        frames = max(1, clip_frames(data))  # clips: C·T·H·W dimensions
        self.loss_normalizer = float(data.channels * frames * data.image_size**2)

    def reconstructions(
        self, autoencoder: Autoencoder, settings: ReconstructionSettings, run_dir: Path, step: int
    ) -> dict[str, float]:
        """PSNR/SSIM of the first `num_reconstructions` held-out images; writes the
        original/reconstruction grid of this step."""
        subset = self.test_images[: settings.num_reconstructions]
        stats, reconstructions = reconstruction_statistics(
            autoencoder,
            subset,
            num_steps=settings.decoder_steps,
            sampler=settings.sampler,
            batch_size=settings.batch_size,
            seed=settings.seed,
        )
        save_comparison(
            subset[:32], reconstructions[:32], run_dir / "reconstructions" / f"step_{step:08d}.png"
        )
        return stats


class AutoencoderTask(HeldOutImageTask):
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
        self.load_images(config.data, config.eval.num_images)

    def loss(
        self, module: nn.Module, batch: Any, generator: torch.Generator, step: int
    ) -> LossTerms:
        images, _ = batch
        x = to_model_range(images).to(generator.device, non_blocking=True)
        return module(x, generator, rate_weight=self.config.model.rate_weight(step))

    def summarize(self, means: Mapping[str, float]) -> dict[str, float]:
        frames = self.model.num_frames
        pixels = math.prod(self.model.image_shape[1:])  # H·W, or T·H·W of a clip
        report = bits_report(means, pixels, math.prod(self.model.latent_shape), frames)
        kept = ("per_pixel", "per_frame")
        return {**means, **{key: v for key, v in report.items() if key.endswith(kept)}}

    def evaluate(self, ema: nn.Module, step: int, run_dir: Path) -> dict[str, float]:
        assert isinstance(ema, Autoencoder)
        start = time.perf_counter()
        settings = self.config.eval
        results = rate_statistics(
            ema, self.test_images, settings.rate_passes, settings.batch_size, settings.seed
        )
        results |= self.reconstructions(ema, settings, run_dir, step)
        results["eval_seconds"] = time.perf_counter() - start
        controller = getattr(self.model, "rate_controller", None)  # the trained (online) model
        if controller is not None:  # rate targeting steers the EMA model's held-out rate
            controller.calibrate(results["bits_per_pixel"])
        return results


def load_autoencoder(
    run_dir: Path, device: torch.device, step: int | None = None
) -> AutoencoderModels:
    """The EMA autoencoder of a run (newest checkpoint, or that of `step`), rebuilt from the
    config stored in its checkpoint, in eval mode on `device`."""
    config, loaded = load_run(run_dir, KIND, AutoencoderRunConfig, step)
    model = build_autoencoder(config)
    model.load_state_dict(loaded.ema)
    return AutoencoderModels(model.to(device).eval(), config, loaded)


class AutoencoderKind(KindBase[AutoencoderRunConfig]):
    """Stage 1: `ul train autoencoder` (alias `ul train-autoencoder`)."""

    name = KIND
    description = "stage 1: encoder, prior and decoder (UL or a baseline autoencoder)"
    config_type = AutoencoderRunConfig
    opens_as = "autoencoder"

    def build_task(
        self, config: AutoencoderRunConfig, context: DistributedContext, device: torch.device
    ) -> AutoencoderTask:
        return AutoencoderTask(config)

    def networks(self, config: AutoencoderRunConfig) -> NetworkTable:
        return NetworkTable(autoencoder_costs(lambda: build_autoencoder(config)))

    def evaluate(
        self, run_dir: Path, step: int, device: torch.device, options: EvaluateOptions
    ) -> RunEvaluation:
        model, config, _ = load_autoencoder(run_dir, device, step)
        steps, sampler = options.decoder_steps or config.eval.decoder_steps, config.eval.sampler
        evaluation = evaluate_autoencoder(
            model, config.data, config.eval, decoder_steps=steps, sampler=sampler, options=options
        )
        settings = {
            "decoder_steps": steps,
            "sampler": sampler,
            "deterministic_decoder": model.deterministic_decoder,  # steps/sampler then unused
            "dataset": config.data.name,
        }
        per_image = evaluation.flops["stage1_training_per_image"]
        cost = run_cost("stage1", run_dir, step, config.train.batch_size, per_image)
        return RunEvaluation(evaluation, settings, [cost])

    def autoencoder(
        self, run_dir: Path, device: torch.device, step: int | None = None
    ) -> AutoencoderModels:
        return load_autoencoder(run_dir, device, step)


class KindOnAutoencoder(KindBase[C]):
    """A kind whose runs start from an autoencoder run (the base model, decoder distillation);
    before that run exists, a dry run may name one of the autoencoder presets instead."""

    def __init__(
        self,
        presets: Mapping[str, Callable[[], C]],
        autoencoder_presets: Mapping[str, Callable[[], AutoencoderRunConfig]],
    ) -> None:
        super().__init__(presets)
        self.autoencoder_presets = autoencoder_presets
