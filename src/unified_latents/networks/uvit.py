"""The UViT pixel-space diffusion decoder p(x | z) (UL-SPEC §6, §11).

Convolutional down stages → a transformer at the lowest resolution → convolutional up stages with
skip connections. The latent z enters (config.latent_injection):
- "add":    a conv projection of z is added to the features wherever a down stage's resolution
            equals the latent's, and always to the transformer's input tokens (z resized first if
            the resolutions differ);
- "concat": z, upsampled to the image resolution, is concatenated to x_t at the input;
- "both":   both (default) [C: the paper does not say how z_0 enters].
The conditioning vector is emb(λ) + emb_z(λ_z): λ_z is the log-SNR of the noise on z (λ_0 = 5 for
stage 1; a per-example λ_aug for the single-stage variant, spec §9).

Video (`frames` > 0): x_t is [B, C, T, H, W] and z [B, c, T', h, w] with T' dividing T; each latent
frame is repeated over the T / T' frames it codes, the convolutions run per frame and the
transformer sees all T·N tokens of the clip (full or factorised attention, networks/video.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unified_latents.config import ConfigError
from unified_latents.networks.cpu_linear import Linear
from unified_latents.networks.layers import (
    Downsample,
    GroupNorm,
    LogSNREmbedding,
    ResBlock,
    Upsample,
    zero_init,
)
from unified_latents.networks.transformer import (
    AdaptiveLayerNormOut,
    MLPActivation,
    TransformerBlock,
    check_mlp_activation,
    from_tokens,
    to_tokens,
)
from unified_latents.networks.video import SpaceTime, fold_frames, unfold_frames

LatentInjection = Literal["add", "concat", "both"]


@dataclass(frozen=True, kw_only=True)
class UViTConfig:
    channels: tuple[int, ...] = (32, 64, 128)  # conv stages; the transformer runs after the last
    blocks_per_stage: int = 2
    transformer_width: int = 128
    transformer_depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    mlp_activation: MLPActivation = "gelu_tanh"  # see networks/layers.py; presets use "gelu"
    patch_size: int = 1
    dropout: float = 0.0
    latent_injection: LatentInjection = "both"
    # True: halve the last conv stage's resolution once more before the transformer (and double
    # it after), as in simple diffusion's UViT; the paper-scale preset uses it so the 8 × 1024
    # transformer runs on the 32×32 latent grid of a 512² image [C].
    transformer_downsample: bool = False

    def __post_init__(self) -> None:
        if not self.channels or any(c < 1 for c in self.channels):
            raise ValueError(f"uvit.channels must be non-empty and positive, got {self.channels}")
        for name in ("blocks_per_stage", "transformer_width", "heads", "patch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"uvit.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.transformer_depth < 0:
            raise ValueError(f"uvit.transformer_depth must be ≥ 0, got {self.transformer_depth}")
        if self.transformer_width % self.heads:
            raise ValueError(
                f"uvit.transformer_width={self.transformer_width} is not divisible "
                f"by uvit.heads={self.heads}"
            )
        if self.mlp_ratio <= 0:
            raise ValueError(f"uvit.mlp_ratio must be > 0, got {self.mlp_ratio}")
        check_mlp_activation(self.mlp_activation, "uvit")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"uvit.dropout must be in [0, 1), got {self.dropout}")
        if self.latent_injection not in get_args(LatentInjection):
            raise ValueError(
                f"uvit.latent_injection={self.latent_injection!r}; choose one of "
                f"{', '.join(get_args(LatentInjection))}"
            )

    @property
    def downsample_factor(self) -> int:
        """Image size ÷ the transformer's grid size."""
        extra = 1 if self.transformer_downsample else 0
        return self.patch_size * 2 ** (len(self.channels) - 1 + extra)


def resize(z: Tensor, size: int) -> Tensor:
    """Nearest-neighbour up (each latent pixel covers its patch), area average down."""
    if z.shape[-1] == size:
        return z
    return F.interpolate(z, size=(size, size), mode="nearest" if size > z.shape[-1] else "area")


class UViTDecoder(nn.Module):
    def __init__(
        self,
        config: UViTConfig,
        image_channels: int,
        image_size: int,
        latent_channels: int,
        latent_size: int,
        default_z_logsnr: float = 5.0,
        *,
        frames: int = 0,
        latent_frames: int = 0,
        attention: str = "factorised",
    ) -> None:
        super().__init__()
        if frames and (not latent_frames or frames % latent_frames):
            raise ConfigError(f"{latent_frames} latent frames cannot code {frames} frames")
        if image_size % config.downsample_factor:
            raise ConfigError(
                f"image size {image_size} is not divisible by the decoder's "
                f"downsampling factor {config.downsample_factor}"
            )
        self.config = config
        self.frames, self.latent_frames = frames, latent_frames
        time, latent_time = ((frames,), (latent_frames,)) if frames else ((), ())
        self.image_shape = (image_channels, *time, image_size, image_size)
        self.latent_shape = (latent_channels, *latent_time, latent_size, latent_size)
        self.default_z_logsnr = default_z_logsnr
        self.adds_latent = config.latent_injection in ("add", "both")
        self.concats_latent = config.latent_injection in ("concat", "both")
        cond_dim = config.transformer_width
        self.logsnr_embedding = LogSNREmbedding(cond_dim)
        self.z_logsnr_embedding = LogSNREmbedding(cond_dim)
        in_channels = image_channels + (latent_channels if self.concats_latent else 0)
        self.stem = nn.Conv2d(in_channels * config.patch_size**2, config.channels[0], 3, padding=1)
        self._build_conv_stages(cond_dim)
        self._build_transformer(cond_dim, attention)
        self.norm_out = GroupNorm(config.channels[0])
        self.conv_out = zero_init(
            nn.Conv2d(config.channels[0], image_channels * config.patch_size**2, 3, padding=1)
        )

    def stage_size(self, index: int) -> int:
        return self.image_shape[-1] // (self.config.patch_size * 2**index)

    def _build_conv_stages(self, cond_dim: int) -> None:
        config, blocks = self.config, self.config.blocks_per_stage
        self.down = nn.ModuleList()
        self.up = nn.ModuleList()
        self.downsamplers = nn.ModuleList(Downsample(c) for c in config.channels[:-1])
        # Upsampling also narrows to the next stage's width: the conv at the higher resolution is
        # the costliest layer of a small decoder, so it should not run at the wider width.
        self.upsamplers = nn.ModuleList(
            Upsample(config.channels[i + 1], config.channels[i])
            for i in range(len(config.channels) - 1)
        )
        # Latent projections keyed by the index of each down stage at the latent's resolution.
        self.latent_to_stage = nn.ModuleDict()
        width = config.channels[0]
        for index, stage_width in enumerate(config.channels):
            self.down.append(nn.ModuleList(
                ResBlock(width if j == 0 else stage_width, stage_width, cond_dim, config.dropout)
                for j in range(blocks)
            ))  # fmt: skip
            if self.adds_latent and self.stage_size(index) == self.latent_shape[-1]:
                # Added to the stage's input, which still has the previous stage's width.
                self.latent_to_stage[str(index)] = nn.Conv2d(
                    self.latent_shape[0], width, 3, padding=1
                )
            width = stage_width
        for stage_width in reversed(config.channels):
            # Each up block takes the running features (stage_width wide: the transformer output or
            # an Upsample's) concatenated with one down-block output of the same stage.
            self.up.append(nn.ModuleList(
                ResBlock(2 * stage_width, stage_width, cond_dim, config.dropout)
                for _ in range(blocks)
            ))  # fmt: skip

    def _build_transformer(self, cond_dim: int, attention: str) -> None:
        config = self.config
        width, bottleneck = config.transformer_width, config.channels[-1]
        extra = 1 if config.transformer_downsample else 0
        num_tokens = self.stage_size(len(config.channels) - 1 + extra) ** 2
        # Downsample / Upsample around the transformer (None: it runs at the last stage's size).
        self.to_transformer = Downsample(bottleneck) if extra else None
        self.from_transformer = Upsample(bottleneck) if extra else None
        self.tokens_in = Linear(bottleneck, width)
        self.position = nn.Parameter(torch.randn(1, num_tokens, width) * 0.02)
        self.latent_to_tokens = (
            nn.Conv2d(self.latent_shape[0], width, 3, padding=1) if self.adds_latent else None
        )
        self.blocks = nn.ModuleList(
            TransformerBlock(
                width,
                config.heads,
                cond_dim,
                config.mlp_ratio,
                config.dropout,
                config.mlp_activation,
            )
            for _ in range(config.transformer_depth)
        )
        self.tokens_norm = AdaptiveLayerNormOut(width, cond_dim)
        self.tokens_out = Linear(width, bottleneck)
        self.space_time = (
            SpaceTime(self.frames, num_tokens, width, attention) if self.frames else None
        )

    def forward(
        self, x_t: Tensor, logsnr: Tensor, z: Tensor, z_logsnr: Tensor | None = None
    ) -> Tensor:
        self._check_shapes(x_t, z)
        if z_logsnr is None:
            # Same embedding as an explicit λ_z = default, so both call styles agree exactly.
            z_logsnr = torch.full_like(logsnr, self.default_z_logsnr, dtype=torch.float32)
        cond = self.logsnr_embedding(logsnr) + self.z_logsnr_embedding(z_logsnr)  # [B, D] fp32
        if self.frames:  # per frame from here on, the latent frame repeated over its frames
            z = fold_frames(z.repeat_interleave(self.frames // self.latent_frames, dim=2))
            x_t, cond = fold_frames(x_t), cond.repeat_interleave(self.frames, dim=0)
        h = (
            torch.cat([x_t, resize(z, x_t.shape[-1]).to(x_t.dtype)], 1)
            if self.concats_latent
            else x_t
        )
        if self.config.patch_size > 1:
            h = F.pixel_unshuffle(h, self.config.patch_size)  # [B, C'·p², H/p, W/p]
        h, skips = self._down(self.stem(h), z, cond)
        h = self._middle(h, z, cond)  # [B, channels[-1], H/f, W/f]
        h = self._up(h, skips, cond)  # [B, channels[0], H/p, W/p]
        out = self.conv_out(F.silu(self.norm_out(h)))  # [B, C·p², H/p, W/p]
        if self.config.patch_size > 1:
            out = F.pixel_shuffle(out, self.config.patch_size)
        return unfold_frames(out, self.frames) if self.frames else out

    def _check_shapes(self, x_t: Tensor, z: Tensor) -> None:
        if tuple(x_t.shape[1:]) != self.image_shape or tuple(z.shape[1:]) != self.latent_shape:
            raise ValueError(
                f"UViTDecoder expects x_t [B, {', '.join(map(str, self.image_shape))}] and z "
                f"[B, {', '.join(map(str, self.latent_shape))}], got {tuple(x_t.shape)} and "
                f"{tuple(z.shape)}"
            )

    def _down(self, h: Tensor, z: Tensor, cond: Tensor) -> tuple[Tensor, list[Tensor]]:
        skips: list[Tensor] = []
        for index, blocks in enumerate(self.down):
            if index > 0:
                h = self.downsamplers[index - 1](h)
            if str(index) in self.latent_to_stage:
                h = h + self.latent_to_stage[str(index)](z)  # same resolution as z
            for block in cast(nn.ModuleList, blocks):
                h = block(h, cond)
                skips.append(h)
        return h, skips

    def _middle(self, h: Tensor, z: Tensor, cond: Tensor) -> Tensor:
        if self.to_transformer is not None:
            h = self.to_transformer(h)  # [B, channels[-1], H/2f, W/2f]
        size = h.shape[-1]
        tokens = self.tokens_in(to_tokens(h))  # [B(·T), N, D]
        if self.space_time is None:
            tokens = tokens + self.position
        if self.latent_to_tokens is not None:
            tokens = tokens + to_tokens(self.latent_to_tokens(resize(z, size)))
        if self.space_time is None:
            for block in self.blocks:
                tokens = block(tokens, cond)
            tokens = self.tokens_out(self.tokens_norm(tokens, cond))  # [B, N, channels[-1]]
        else:  # the clip's T·N tokens, with one conditioning vector per clip
            tokens, clip_cond = self.space_time.tokens(tokens, self.position), cond[:: self.frames]
            for index, block in enumerate(self.blocks):
                tokens = self.space_time.run(block, index, tokens, clip_cond)
            tokens = self.space_time.per_frame(self.tokens_norm(tokens, clip_cond))
            tokens = self.tokens_out(tokens)  # [B·T, N, channels[-1]]
        h = from_tokens(tokens, size, size)
        return h if self.from_transformer is None else self.from_transformer(h)

    def _up(self, h: Tensor, skips: list[Tensor], cond: Tensor) -> Tensor:
        for index, blocks in enumerate(self.up):
            if index > 0:
                h = self.upsamplers[len(self.upsamplers) - index](h)
            for block in cast(nn.ModuleList, blocks):
                h = block(torch.cat([h, skips.pop()], dim=1), cond)
        return h
