"""Stage-1 objective kind → model constructor (`ObjectiveConfig.kind`, at the config boundary).

Every constructor takes (model config, objective config, image channels, image size) and returns
an `Autoencoder`; the stages never branch on the kind.
"""

from __future__ import annotations

from collections.abc import Callable

from unified_latents.config import ConfigError
from unified_latents.objectives.autoencoder import Autoencoder, ObjectiveConfig
from unified_latents.objectives.baselines import (
    MSEDecoderLatents,
    NormalPriorLatents,
    StopGradPriorLatents,
)
from unified_latents.objectives.kl_vae import FrameKLAutoencoder, KLAutoencoder
from unified_latents.objectives.unified_latents import UnifiedLatents, UnifiedLatentsConfig

AutoencoderFactory = Callable[[UnifiedLatentsConfig, ObjectiveConfig, int, int], Autoencoder]


def _unified_latents(
    config: UnifiedLatentsConfig, objective: ObjectiveConfig, image_channels: int, image_size: int
) -> Autoencoder:
    return UnifiedLatents(config, image_channels, image_size)  # UL has no baseline knobs


# Keys are exactly the `AutoencoderKind` literals (checked by the tests).
AUTOENCODER_KINDS: dict[str, AutoencoderFactory] = {
    "ul": _unified_latents,
    "kl-vae": KLAutoencoder,
    "ul-mse-decoder": MSEDecoderLatents,
    "ul-normal-prior": NormalPriorLatents,
    "ul-stopgrad-prior": StopGradPriorLatents,
}


def build_stage1_model(
    config: UnifiedLatentsConfig,
    objective: ObjectiveConfig,
    image_channels: int,
    image_size: int,
    num_frames: int = 0,
) -> Autoencoder:
    """The stage-1 model `objective.kind` names (the kind is validated by `ObjectiveConfig`);
    `num_frames` > 0: a video autoencoder of clips [C, T, H, W] (UL, or the per-frame KL-VAE
    baseline)."""
    if num_frames:
        if objective.kind == "kl-vae":
            return FrameKLAutoencoder(config, objective, image_channels, image_size, num_frames)
        if objective.kind != "ul":
            raise ConfigError(
                f"video autoencoders are UL or kl-vae so far (objective.kind={objective.kind!r})"
            )
        return UnifiedLatents(config, image_channels, image_size, num_frames)
    if config.target_bits_per_pixel > 0 and objective.kind != "ul":
        raise ValueError(
            f"model.target_bits_per_pixel steers UL's loss factor; objective.kind="
            f"{objective.kind!r} has no such loop (set it to 0)"
        )
    return AUTOENCODER_KINDS[objective.kind](config, objective, image_channels, image_size)
