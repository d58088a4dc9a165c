"""What the preset families share: the training settings of the tiny (test) and demo-scale
presets, and the toy networks of the tiny ones (`presets_tiny.py`, `presets_video.py`)."""

from __future__ import annotations

from unified_latents.networks.encoder import EncoderConfig
from unified_latents.networks.uvit import UViTConfig
from unified_latents.networks.vit import ViTConfig
from unified_latents.objectives.unified_latents import UnifiedLatentsConfig
from unified_latents.training.config import TrainConfig
from unified_latents.training.optim import OptimConfig

TINY_OPTIM = OptimConfig(lr=1e-3, warmup_steps=5)
DEMO_OPTIM = OptimConfig(lr=3e-4, warmup_steps=200)  # the demo-scale presets (minutes to hours)


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


def demo_training(
    batch_size: int, *, max_steps: int = 20_000, eval_every: int = 1000, ema_decay: float = 0.999
) -> TrainConfig:
    """The training settings of the demo-scale presets (Fashion-MNIST, moving digits): a
    checkpoint at every evaluation."""
    return TrainConfig(
        batch_size=batch_size,
        max_steps=max_steps,
        eval_every=eval_every,
        checkpoint_every=eval_every,
        ema_decay=ema_decay,
    )


def tiny_vit(depth: int) -> ViTConfig:
    """The toy transformer of the tiny presets (width 32, 2 heads): priors and base models."""
    return ViTConfig(width=32, depth=depth, heads=2)


def tiny_networks(
    channels: tuple[int, int], depth: int, patch_size: int = 1
) -> UnifiedLatentsConfig:
    """The toy UL networks of the tiny presets: a 2-stage encoder with `channels` (one block
    each, 2 latent channels), a `tiny_vit` prior and a UViT decoder with the encoder's stages and
    a `tiny_vit`-sized transformer, both transformers `depth` blocks deep."""
    return UnifiedLatentsConfig(
        encoder=EncoderConfig(
            channels=channels, blocks_per_stage=1, latent_channels=2, patch_size=patch_size
        ),
        prior=tiny_vit(depth),
        decoder=UViTConfig(
            channels=channels,
            blocks_per_stage=1,
            patch_size=patch_size,
            transformer_width=32,
            transformer_depth=depth,
            heads=2,
        ),
    )
