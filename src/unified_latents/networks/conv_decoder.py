"""A deterministic convolutional decoder z → x̂: the mirror image of the conv encoder.

Used by the baselines that replace UL's diffusion decoder (objectives/baselines.py, kl_vae.py):
the Stable-Diffusion-style KL autoencoder and the "diffusion prior + MSE decoder" ablation
(UL-SPEC §10). It takes the encoder's config and runs it backwards, so encoder and decoder of a
baseline have the same widths and depth without a second set of settings.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from unified_latents.networks.encoder import EncoderConfig
from unified_latents.networks.layers import GroupNorm, ResBlock, Upsample


class ConvDecoder(nn.Module):
    """conv from the latent → [ResBlocks, Upsample] per stage, widest first → norm → SiLU →
    conv to pixels → depth-to-space (if the encoder patchified). Unconditioned and
    deterministic: one latent gives one image."""

    def __init__(self, config: EncoderConfig, image_channels: int) -> None:
        super().__init__()
        self.config = config
        self.upsample_factor = config.downsample_factor
        widths = tuple(reversed(config.channels))  # the encoder's stages, deepest first
        self.conv_in = nn.Conv2d(config.latent_channels, widths[0], 3, padding=1)
        layers: list[nn.Module] = []
        width = widths[0]
        for index, stage_width in enumerate(widths):
            if index > 0:
                layers.append(Upsample(width, stage_width))
                width = stage_width
            for _ in range(config.blocks_per_stage):
                layers.append(ResBlock(width, stage_width, cond_dim=None, dropout=config.dropout))
        self.stages = nn.Sequential(*layers)
        self.norm_out = GroupNorm(width)
        patch = config.patch_size
        self.conv_out = nn.Conv2d(width, image_channels * patch * patch, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        if z.shape[1] != self.config.latent_channels:
            raise ValueError(
                f"ConvDecoder expects {self.config.latent_channels} latent channels, "
                f"got {tuple(z.shape)}"
            )
        h = self.stages(self.conv_in(z))  # [B, channels[0], h·f/p, w·f/p]
        out = self.conv_out(F.silu(self.norm_out(h)))  # [B, C·p², H/p, W/p]
        if self.config.patch_size > 1:
            out = F.pixel_shuffle(out, self.config.patch_size)  # [B, C, H, W]
        return out
