"""The deterministic convolutional encoder x → z_clean (UL-SPEC §4, §11).

No variance head, no output squashing and no latent rescaling: the fixed encoder noise (λ_0) is
defined on the raw latent scale, and the prior's bits account for whatever scale the encoder picks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from unified_latents.networks.layers import Downsample, GroupNorm, ResBlock


@dataclass(frozen=True, kw_only=True)
class EncoderConfig:
    channels: tuple[int, ...] = (32, 64, 128)  # one entry per resolution stage
    blocks_per_stage: int = 2
    last_stage_blocks: int = 0  # blocks of the lowest-resolution stage; 0 = blocks_per_stage
    latent_channels: int = 4
    patch_size: int = 1  # space-to-depth before the stem (the paper uses 2)
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if not self.channels or any(c < 1 for c in self.channels):
            raise ValueError(
                f"encoder.channels must be non-empty and positive, got {self.channels}"
            )
        if self.blocks_per_stage < 1:
            raise ValueError(f"encoder.blocks_per_stage must be ≥ 1, got {self.blocks_per_stage}")
        if self.last_stage_blocks < 0:
            raise ValueError(f"encoder.last_stage_blocks must be ≥ 0, got {self.last_stage_blocks}")
        if self.latent_channels < 1:
            raise ValueError(f"encoder.latent_channels must be ≥ 1, got {self.latent_channels}")
        if self.patch_size < 1:
            raise ValueError(f"encoder.patch_size must be ≥ 1, got {self.patch_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"encoder.dropout must be in [0, 1), got {self.dropout}")

    @property
    def downsample_factor(self) -> int:
        return self.patch_size * 2 ** (len(self.channels) - 1)

    def stage_blocks(self, index: int) -> int:
        """ResBlocks of stage `index` (the paper: 2 per stage, 3 in the last)."""
        last = index == len(self.channels) - 1
        return self.last_stage_blocks if last and self.last_stage_blocks else self.blocks_per_stage


class ConvEncoder(nn.Module):
    """patchify → conv stem → [ResBlocks, Downsample] per stage → norm → SiLU → conv to latent."""

    def __init__(self, config: EncoderConfig, image_channels: int) -> None:
        super().__init__()
        self.config = config
        self.downsample_factor = config.downsample_factor
        patch = config.patch_size
        self.stem = nn.Conv2d(image_channels * patch * patch, config.channels[0], 3, padding=1)
        layers: list[nn.Module] = []
        width = config.channels[0]
        for index, stage_width in enumerate(config.channels):
            if index > 0:
                layers.append(Downsample(width))
            for _ in range(config.stage_blocks(index)):
                layers.append(ResBlock(width, stage_width, cond_dim=None, dropout=config.dropout))
                width = stage_width
        self.stages = nn.Sequential(*layers)
        self.norm_out = GroupNorm(width)
        self.conv_out = nn.Conv2d(width, config.latent_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        factor = self.downsample_factor
        if height % factor or width % factor:
            raise ValueError(
                f"encoder input {height}×{width} is not divisible by its downsampling factor "
                f"{factor} (patch_size · 2^(stages − 1))"
            )
        if self.config.patch_size > 1:
            x = F.pixel_unshuffle(x, self.config.patch_size)  # [B, C·p², H/p, W/p]
        h = self.stages(self.stem(x))  # [B, channels[-1], H/f, W/f]
        return self.conv_out(F.silu(self.norm_out(h)))  # [B, latent_channels, H/f, W/f]
