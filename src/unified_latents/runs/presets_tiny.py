"""The tiny presets: sklearn digits (8×8) and toy networks that train in seconds on a CPU, for
tests and smoke checks (`--preset tiny` of every run kind, `<ablation>-tiny`, `pixel-tiny`)."""

from __future__ import annotations

from dataclasses import replace

from unified_latents.data.datasets import DataConfig
from unified_latents.networks.conditioning import ConditionConfig
from unified_latents.networks.encoder import EncoderConfig
from unified_latents.networks.uvit import UViTConfig
from unified_latents.networks.vit import ViTConfig
from unified_latents.objectives.latent_diffusion import BaseModelConfig
from unified_latents.objectives.single_stage import SingleStageConfig
from unified_latents.objectives.unified_latents import UnifiedLatentsConfig
from unified_latents.runs.autoencoder import AutoencoderEvalConfig, AutoencoderRunConfig
from unified_latents.runs.base_model import BaseEvalConfig, BaseRunConfig
from unified_latents.runs.end_to_end import EndToEndEvalConfig, EndToEndRunConfig
from unified_latents.training.config import TrainConfig
from unified_latents.training.optim import OptimConfig


def tiny_training(max_steps: int, eval_every: int) -> TrainConfig:
    """The training settings of the tiny presets: seconds on a CPU, for tests."""
    return TrainConfig(
        batch_size=32,
        max_steps=max_steps,
        log_every=10,
        eval_every=eval_every,
        checkpoint_every=eval_every,
        ema_decay=0.9,
        progress=False,
    )


def autoencoder_tiny() -> AutoencoderRunConfig:
    """sklearn digits (8×8), a 4×4×2 latent and toy networks: trains in seconds, for tests."""
    return AutoencoderRunConfig(
        data=DataConfig(name="digits", image_size=8, channels=1, holdout_size=297),
        model=UnifiedLatentsConfig(
            encoder=EncoderConfig(channels=(16, 32), blocks_per_stage=1, latent_channels=2),
            prior=ViTConfig(width=32, depth=1, heads=2),
            decoder=UViTConfig(
                channels=(16, 32),
                blocks_per_stage=1,
                transformer_width=32,
                transformer_depth=1,
                heads=2,
            ),
        ),
        optim=OptimConfig(lr=1e-3, warmup_steps=5),
        train=tiny_training(max_steps=40, eval_every=20),
        eval=AutoencoderEvalConfig(
            num_images=64, rate_passes=1, num_reconstructions=16, decoder_steps=8
        ),
    )


def base_tiny() -> BaseRunConfig:
    """For tests and smoke checks on a `--preset tiny` autoencoder."""
    return BaseRunConfig(
        model=BaseModelConfig(
            network=ViTConfig(width=32, depth=1, heads=2),
            condition=ConditionConfig(kind="class", num_classes=10),
        ),
        optim=OptimConfig(lr=1e-3, warmup_steps=5),
        train=tiny_training(max_steps=20, eval_every=10),
        eval=BaseEvalConfig(
            num_latents=64,
            elbo_passes=1,
            samples_per_class=2,
            base_steps=8,
            decoder_steps=8,
            batch_size=64,
        ),
    )


def end_to_end_tiny() -> EndToEndRunConfig:
    """For tests and smoke checks: the tiny autoencoder and base model on sklearn digits."""
    autoencoder, base = autoencoder_tiny(), base_tiny()
    return EndToEndRunConfig(
        data=autoencoder.data,
        model=SingleStageConfig(autoencoder=autoencoder.model, base=base.model),
        optim=autoencoder.optim,
        train=replace(autoencoder.train, max_steps=20, eval_every=10, checkpoint_every=10),
        eval=EndToEndEvalConfig(
            num_images=64,
            elbo_passes=1,
            num_reconstructions=16,
            samples_per_class=2,
            base_steps=8,
            decoder_steps=8,
            batch_size=64,
        ),
    )
