"""Name → constructor, one dict per network family, used at the config boundary.

Configs store a network kind as a string (e.g. `prior_network = "vit"`); these helpers turn it into
a module and name the valid choices when it is unknown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import nn

from unified_latents.networks.conditioning import ConditionConfig
from unified_latents.networks.encoder import ConvEncoder, EncoderConfig
from unified_latents.networks.uvit import UViTConfig, UViTDecoder
from unified_latents.networks.vit import LatentViT, ViTConfig

ENCODER_NETWORKS: dict[str, Callable[..., nn.Module]] = {"conv": ConvEncoder}
PRIOR_NETWORKS: dict[str, Callable[..., nn.Module]] = {"vit": LatentViT}
DECODER_NETWORKS: dict[str, Callable[..., nn.Module]] = {"uvit": UViTDecoder}


def _lookup(
    family: str, registry: Mapping[str, Callable[..., nn.Module]], kind: str
) -> Callable[..., nn.Module]:
    if kind not in registry:
        raise ValueError(
            f"unknown {family} network {kind!r}; choose one of: {', '.join(sorted(registry))}"
        )
    return registry[kind]


def build_encoder(kind: str, config: EncoderConfig, image_channels: int) -> nn.Module:
    """An encoder x [B, C, H, W] → z_clean; it exposes `downsample_factor`."""
    return _lookup("encoder", ENCODER_NETWORKS, kind)(config, image_channels)


def build_prior(
    kind: str,
    config: ViTConfig,
    *,
    channels: int,
    size: int,
    condition: ConditionConfig | None = None,
    **video: int | str,
) -> nn.Module:
    """A latent network (z_t, λ, cond) → raw output: the stage-1 prior or the stage-2 base model.
    `video`: `frames` and `attention` for clips (networks/video.py)."""
    constructor = _lookup("prior", PRIOR_NETWORKS, kind)
    return constructor(config, channels, size, condition or ConditionConfig(), **video)


def build_decoder(
    kind: str,
    config: UViTConfig,
    *,
    image_channels: int,
    image_size: int,
    latent_channels: int,
    latent_size: int,
    **options: float | str,
) -> nn.Module:
    """A pixel decoder (x_t, λ, z, z_logsnr=None) → raw output. `options`, passed on with the
    network's defaults: `default_z_logsnr` (the λ_z when the call gives none) and, for clips,
    `frames`, `latent_frames` and `attention` (networks/video.py)."""
    constructor = _lookup("decoder", DECODER_NETWORKS, kind)
    return constructor(config, image_channels, image_size, latent_channels, latent_size, **options)
