"""Named starting configurations. Each preset is a function; presets derive from each other with
`dataclasses.replace`, and users override any field with `--set key=value`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from unified_latents.data.datasets import DataConfig
from unified_latents.networks.encoder import EncoderConfig
from unified_latents.networks.uvit import UViTConfig
from unified_latents.networks.vit import ViTConfig
from unified_latents.objectives.unified_latents import UnifiedLatentsConfig
from unified_latents.stages.autoencoder import AutoencoderEvalConfig, AutoencoderRunConfig
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
