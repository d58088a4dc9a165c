"""Space-time pieces that turn the image networks into video networks (issue 17).

A clip is [B, C, T, H, W]. The image networks stay the networks: convolutions run per frame (the
frames folded into the batch, `fold_frames`), and the transformers see the tokens of all frames,
with either full attention over T·N tokens or factorised attention (`SpaceTime.run`: even blocks
attend within a frame, odd blocks across frames at one position, as in ViViT's factorised
encoder / Video Diffusion Models' space-time factorisation) [C: the paper says only that its
video models attend over space and time]. A learned embedding per frame index is added to the
tokens' spatial position embedding; it starts at zero, so a one-frame clip through a video network
with full attention computes exactly what the image network computes with the same weights.

The encoder (`FrameEncoder`) is the image encoder per frame followed, for temporal downsampling
s > 1, by a strided convolution over s consecutive frames of latents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from unified_latents.networks.encoder import ConvEncoder, EncoderConfig

SpaceTimeAttention = Literal["factorised", "full"]


@dataclass(frozen=True, kw_only=True)
class VideoConfig:
    """How a video model treats time (used only when the data are clips)."""

    temporal_downsample: int = 1  # frames per latent frame (1, 2, 4, …)
    attention: SpaceTimeAttention = "factorised"

    def __post_init__(self) -> None:
        if self.temporal_downsample < 1:
            raise ValueError(
                f"video.temporal_downsample must be ≥ 1, got {self.temporal_downsample}"
            )
        if self.attention not in get_args(SpaceTimeAttention):
            raise ValueError(
                f"video.attention={self.attention!r}; choose one of "
                f"{', '.join(get_args(SpaceTimeAttention))}"
            )

    def latent_frames(self, num_frames: int) -> int:
        """Latent frames of a `num_frames` clip (a clear error when it does not divide)."""
        if num_frames % self.temporal_downsample:
            raise ValueError(
                f"clips of {num_frames} frames do not divide into latent frames of "
                f"video.temporal_downsample={self.temporal_downsample}"
            )
        return num_frames // self.temporal_downsample


def fold_frames(x: Tensor) -> Tensor:
    """[B, C, T, H, W] → [B·T, C, H, W] (frame-major within each clip)."""
    batch, channels, frames, height, width = x.shape
    return x.transpose(1, 2).reshape(batch * frames, channels, height, width)


def unfold_frames(x: Tensor, frames: int) -> Tensor:
    """Inverse of `fold_frames`: [B·T, C, H, W] → [B, C, T, H, W]."""
    folded, channels, height, width = x.shape
    return x.reshape(folded // frames, frames, channels, height, width).transpose(1, 2)


class SpaceTime(nn.Module):
    """The frame-index embedding and the attention pattern of a video transformer whose tokens
    are [B, T·N, D] (frame-major: the N tokens of frame 0, then frame 1, …)."""

    def __init__(self, frames: int, tokens_per_frame: int, width: int, attention: str) -> None:
        super().__init__()
        self.frames, self.tokens_per_frame, self.attention = frames, tokens_per_frame, attention
        self.time_position = nn.Parameter(torch.zeros(1, frames, 1, width))

    def tokens(self, per_frame: Tensor, position: Tensor) -> Tensor:
        """Per-frame tokens [B·T, N, D] + spatial position [1, N, D] + frame embedding →
        [B, T·N, D]."""
        folded, count, width = per_frame.shape
        h = per_frame.reshape(folded // self.frames, self.frames, count, width)
        h = h + position[:, None] + self.time_position
        return h.reshape(-1, self.frames * count, width)

    def per_frame(self, tokens: Tensor) -> Tensor:
        """[B, T·N, D] → [B·T, N, D]."""
        return tokens.reshape(-1, self.tokens_per_frame, tokens.shape[-1])

    def run(self, block: nn.Module, index: int, h: Tensor, cond: Tensor) -> Tensor:
        """Block `index` of the stack on tokens [B, T·N, D] with conditioning [B, Dc]."""
        if self.attention == "full":
            return block(h, cond)
        batch, frames, count = h.shape[0], self.frames, self.tokens_per_frame
        if index % 2 == 0:  # within each frame
            out = block(self.per_frame(h), cond.repeat_interleave(frames, dim=0))
            return out.reshape(batch, frames * count, -1)
        # across frames, at each spatial position: [B, T, N, D] → [B·N, T, D]
        across = (
            h.reshape(batch, frames, count, -1).transpose(1, 2).reshape(batch * count, frames, -1)
        )
        out = block(across, cond.repeat_interleave(count, dim=0))
        return (
            out.reshape(batch, count, frames, -1).transpose(1, 2).reshape(batch, frames * count, -1)
        )


class FrameEncoder(nn.Module):
    """The image encoder on every frame, then (s > 1) a stride-s convolution over time:
    x [B, C, T, H, W] → z_clean [B, c, T/s, H/f, W/f]."""

    def __init__(self, config: EncoderConfig, image_channels: int, video: VideoConfig) -> None:
        super().__init__()
        self.frames_encoder = ConvEncoder(config, image_channels)
        self.downsample_factor = self.frames_encoder.downsample_factor
        s = video.temporal_downsample
        channels = config.latent_channels
        self.temporal = (
            nn.Conv3d(channels, channels, (s, 1, 1), stride=(s, 1, 1)) if s > 1 else None
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5:
            raise ValueError(f"a video encoder expects clips [B, C, T, H, W], got {tuple(x.shape)}")
        z = unfold_frames(self.frames_encoder(fold_frames(x)), x.shape[2])  # [B, c, T, h, w]
        return z if self.temporal is None else self.temporal(z)
