"""Named starting configurations. Each preset is a function; presets derive from each other with
`dataclasses.replace`, and users override any field with `--set key=value`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from unified_latents.data.datasets import DataConfig
from unified_latents.networks.conditioning import ConditionConfig
from unified_latents.networks.encoder import EncoderConfig
from unified_latents.networks.uvit import UViTConfig
from unified_latents.networks.vit import ViTConfig
from unified_latents.objectives.latent_diffusion import BaseModelConfig
from unified_latents.objectives.unified_latents import UnifiedLatentsConfig
from unified_latents.stages.autoencoder import AutoencoderEvalConfig, AutoencoderRunConfig
from unified_latents.stages.base import BaseEvalConfig, BaseRunConfig
from unified_latents.training.loop import TrainConfig
from unified_latents.training.optim import OptimConfig


def autoencoder_fashion_mnist() -> AutoencoderRunConfig:
    """The default: Fashion-MNIST padded to 32×32, an 8×8×4 latent, sized for a 2-core CPU."""
    return AutoencoderRunConfig(
        data=DataConfig(name="fashion-mnist", image_size=32, channels=1),
        model=UnifiedLatentsConfig(
            encoder=EncoderConfig(channels=(32, 64, 128), blocks_per_stage=1, latent_channels=4),
            prior=ViTConfig(width=128, depth=4, heads=4),
            decoder=UViTConfig(
                channels=(32, 64, 128),
                blocks_per_stage=1,
                transformer_width=128,
                transformer_depth=4,
                heads=4,
            ),
        ),
        optim=OptimConfig(lr=3e-4, warmup_steps=200),
        train=TrainConfig(
            batch_size=64, max_steps=20_000, eval_every=1000, checkpoint_every=1000, ema_decay=0.999
        ),
        eval=AutoencoderEvalConfig(num_images=256, num_reconstructions=64, decoder_steps=32),
    )


def autoencoder_mnist_5k() -> AutoencoderRunConfig:
    base = autoencoder_fashion_mnist()
    return replace(base, data=replace(base.data, name="mnist-5k", holdout_size=500))


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
        train=TrainConfig(
            batch_size=32,
            max_steps=40,
            log_every=10,
            eval_every=20,
            checkpoint_every=20,
            ema_decay=0.9,
            progress=False,
        ),
        eval=AutoencoderEvalConfig(
            num_images=64, rate_passes=1, num_reconstructions=16, decoder_steps=8
        ),
    )


AUTOENCODER_PRESETS: dict[str, Callable[[], AutoencoderRunConfig]] = {
    "fashion-mnist": autoencoder_fashion_mnist,
    "mnist-5k": autoencoder_mnist_5k,
    "tiny": autoencoder_tiny,
}


def base_fashion_mnist() -> BaseRunConfig:
    """Class-conditional base model (10% label dropout, CFG) on Fashion-MNIST UL latents."""
    return BaseRunConfig(
        model=BaseModelConfig(
            network=ViTConfig(width=192, depth=6, heads=6),
            condition=ConditionConfig(kind="class", num_classes=10),
        ),
        optim=OptimConfig(lr=3e-4, warmup_steps=200),
        train=TrainConfig(
            batch_size=128,
            max_steps=20_000,
            eval_every=1000,
            checkpoint_every=1000,
            ema_decay=0.999,
        ),
        eval=BaseEvalConfig(
            num_latents=1000, samples_per_class=8, base_steps=64, decoder_steps=32, guidance=2.0
        ),
    )


def base_fashion_mnist_text() -> BaseRunConfig:
    """Text-conditional: MiniLM embeddings of captions built from the labels."""
    base = base_fashion_mnist()
    return replace(base, model=replace(base.model, condition=ConditionConfig(kind="text")))


def base_fashion_mnist_unconditional() -> BaseRunConfig:
    base = base_fashion_mnist()
    return replace(base, model=replace(base.model, condition=ConditionConfig(kind="none")))


def base_tiny() -> BaseRunConfig:
    """For tests and smoke checks on a `--preset tiny` autoencoder."""
    return BaseRunConfig(
        model=BaseModelConfig(
            network=ViTConfig(width=32, depth=1, heads=2),
            condition=ConditionConfig(kind="class", num_classes=10),
        ),
        optim=OptimConfig(lr=1e-3, warmup_steps=5),
        train=TrainConfig(
            batch_size=32,
            max_steps=20,
            log_every=10,
            eval_every=10,
            checkpoint_every=10,
            ema_decay=0.9,
            progress=False,
        ),
        eval=BaseEvalConfig(
            num_latents=64,
            elbo_passes=1,
            samples_per_class=2,
            base_steps=8,
            decoder_steps=8,
            batch_size=64,
        ),
    )


BASE_PRESETS: dict[str, Callable[[], BaseRunConfig]] = {
    "fashion-mnist": base_fashion_mnist,
    "fashion-mnist-text": base_fashion_mnist_text,
    "fashion-mnist-unconditional": base_fashion_mnist_unconditional,
    "tiny": base_tiny,
}
