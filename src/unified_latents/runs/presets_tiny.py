"""The tiny presets: sklearn digits (8×8) and toy networks that train in seconds on a CPU, for
tests and smoke checks (`--preset tiny` of every run kind, `<ablation>-tiny`, `pixel-tiny`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from unified_latents.data.datasets import DataConfig
from unified_latents.networks.conditioning import ConditionConfig
from unified_latents.objectives.latent_diffusion import BaseModelConfig
from unified_latents.objectives.single_stage import SingleStageConfig
from unified_latents.runs.autoencoder import AutoencoderEvalConfig, AutoencoderRunConfig
from unified_latents.runs.base_model import BaseEvalConfig, BaseRunConfig
from unified_latents.runs.end_to_end import EndToEndEvalConfig, EndToEndRunConfig
from unified_latents.runs.presets_common import (
    TINY_OPTIM,
    tiny_networks,
    tiny_training,
    tiny_vit,
)

# The sampling and ELBO settings of the tiny presets that generate (fields of their `eval`).
TINY_SAMPLING: dict[str, Any] = {
    "elbo_passes": 1,
    "samples_per_class": 2,
    "base_steps": 8,
    "decoder_steps": 8,
    "batch_size": 64,
}


def autoencoder_tiny() -> AutoencoderRunConfig:
    """sklearn digits (8×8), a 4×4×2 latent and toy networks: trains in seconds, for tests."""
    return AutoencoderRunConfig(
        data=DataConfig(name="digits", image_size=8, channels=1, holdout_size=297),
        model=tiny_networks(channels=(16, 32), depth=1),
        optim=TINY_OPTIM,
        train=tiny_training(max_steps=40, eval_every=20),
        eval=AutoencoderEvalConfig(
            num_images=64, rate_passes=1, num_reconstructions=16, decoder_steps=8
        ),
    )


def base_tiny() -> BaseRunConfig:
    """For tests and smoke checks on a `--preset tiny` autoencoder."""
    return BaseRunConfig(
        model=BaseModelConfig(
            network=tiny_vit(depth=1), condition=ConditionConfig(kind="class", num_classes=10)
        ),
        optim=TINY_OPTIM,
        train=tiny_training(max_steps=20, eval_every=10),
        eval=BaseEvalConfig(num_latents=64, **TINY_SAMPLING),
    )


def end_to_end_tiny() -> EndToEndRunConfig:
    """For tests and smoke checks: the tiny autoencoder and base model on sklearn digits."""
    autoencoder, base = autoencoder_tiny(), base_tiny()
    return EndToEndRunConfig(
        data=autoencoder.data,
        model=SingleStageConfig(autoencoder=autoencoder.model, base=base.model),
        optim=autoencoder.optim,
        train=replace(autoencoder.train, max_steps=20, eval_every=10, checkpoint_every=10),
        eval=EndToEndEvalConfig(num_images=64, num_reconstructions=16, **TINY_SAMPLING),
    )
