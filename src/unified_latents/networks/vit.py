"""A ViT over latents: the stage-1 prior and the stage-2 base model (UL-SPEC §5, §8, §11).

It maps (z_t, λ, cond) to a raw output of z_t's shape; the Denoiser interprets it (v, ε or x).
Conditioning on λ (and the class/text condition) is through adaptive LayerNorm in every block.
Token-level text conditioning (condition.kind = "text-tokens") adds a cross-attention to the
caption's tokens after every block, at every level (networks/text_tokens.py says why
cross-attention); other kinds build no cross-attention, so their checkpoints are unchanged.

Multi-level (the paper's base model, "2-level ViT [512, 1024] × [6, 16]"): `inner_widths` and
`inner_depths` add levels below the first. The first level runs `depth // 2` blocks at
(width, the full token grid), merges each 2×2 group of tokens into one token of the next level's
width, …, runs the innermost level's blocks, then splits tokens back level by level, adds the
skip from the same level's down path, and runs the remaining `depth − depth // 2` blocks there.
Heads keep the first level's head width (width / heads) at every level [C: the paper says no
more than widths and depths]. The conditioning vector has the widest level's width.

Video (`frames` > 0): z_t is [B, C, T, H, W]; every frame is patchified alike and the blocks see
the T·N tokens of the clip with full or factorised attention (networks/video.py). One level only.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn

from unified_latents.config import ConfigError
from unified_latents.networks.conditioning import ConditionConfig, ConditionEmbedding
from unified_latents.networks.cpu_linear import Linear
from unified_latents.networks.layers import (
    LogSNREmbedding,
    zero_init,
)
from unified_latents.networks.text_tokens import cross_attentions, token_mask
from unified_latents.networks.transformer import (
    AdaptiveLayerNormOut,
    MLPActivation,
    TransformerBlock,
    check_mlp_activation,
    from_tokens,
    to_tokens,
)
from unified_latents.networks.video import SpaceTime, fold_frames, unfold_frames


@dataclass(frozen=True, kw_only=True)
class ViTConfig:
    width: int = 128
    depth: int = 4
    heads: int = 4
    patch_size: int = 1  # latents are small; the paper does not patch them
    mlp_ratio: float = 4.0
    mlp_activation: MLPActivation = "gelu_tanh"  # see networks/layers.py; presets use "gelu"
    dropout: float = 0.0
    inner_widths: tuple[int, ...] = ()  # widths of the levels below the first (2×2 fewer tokens)
    inner_depths: tuple[int, ...] = ()  # blocks of each inner level

    def __post_init__(self) -> None:
        for name in ("width", "depth", "heads", "patch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"vit.{name} must be ≥ 1, got {getattr(self, name)}")
        if len(self.inner_widths) != len(self.inner_depths):
            raise ValueError(
                f"vit.inner_widths {self.inner_widths} and vit.inner_depths {self.inner_depths} "
                "must have one entry per inner level"
            )
        if any(value < 1 for value in (*self.inner_widths, *self.inner_depths)):
            raise ValueError("vit.inner_widths and vit.inner_depths must be ≥ 1")
        if self.inner_widths and self.depth < 2:
            raise ValueError(f"a multi-level vit needs depth ≥ 2 (down and up), got {self.depth}")
        if any(w % self.head_width for w in self.inner_widths):
            raise ValueError(
                f"vit.inner_widths {self.inner_widths} must be multiples of the head width "
                f"{self.head_width} (width / heads)"
            )
        if self.width % self.heads:
            raise ValueError(f"vit.width={self.width} is not divisible by vit.heads={self.heads}")
        if self.mlp_ratio <= 0:
            raise ValueError(f"vit.mlp_ratio must be > 0, got {self.mlp_ratio}")
        check_mlp_activation(self.mlp_activation, "vit")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"vit.dropout must be in [0, 1), got {self.dropout}")

    @property
    def head_width(self) -> int:
        return max(1, self.width // self.heads)

    @property
    def widths(self) -> tuple[int, ...]:
        return (self.width, *self.inner_widths)

    @property
    def grid_factor(self) -> int:
        """Latent size ÷ the innermost level's token grid size."""
        return self.patch_size * 2 ** len(self.inner_widths)


class LatentViT(nn.Module):
    """patchify → Linear → + position embedding → conditioned TransformerBlocks (per level, see
    the module docstring) → adaptive norm → zero-init Linear → unpatchify. The output is exactly 0
    at initialisation."""

    def __init__(
        self,
        config: ViTConfig,
        channels: int,
        size: int,
        condition: ConditionConfig | None = None,
        *,
        frames: int = 0,
        attention: str = "factorised",
    ) -> None:
        super().__init__()
        if frames and (config.inner_widths or (condition and condition.kind == "text-tokens")):
            raise ConfigError("a video ViT has one level and no text-token cross-attention")
        if size % config.grid_factor:
            raise ConfigError(
                f"latent size {size} is not divisible by vit.patch_size · 2^(inner levels) = "
                f"{config.grid_factor}"
            )
        self.config, self.channels, self.size, self.frames = config, channels, size, frames
        patch_dim = channels * config.patch_size**2
        num_tokens = (size // config.patch_size) ** 2
        cond_dim = max(config.widths)
        self.patch_in = Linear(patch_dim, config.width)
        self.position = nn.Parameter(torch.randn(1, num_tokens, config.width) * 0.02)
        self.logsnr_embedding = LogSNREmbedding(cond_dim)
        self.condition_embedding = ConditionEmbedding(condition or ConditionConfig(), cond_dim)
        self.space_time = SpaceTime(frames, num_tokens, config.width, attention) if frames else None

        def heads_at(width: int) -> int:
            return width // config.head_width if config.inner_widths else config.heads

        def blocks(width: int, count: int) -> nn.ModuleList:
            return nn.ModuleList(
                TransformerBlock(width, heads_at(width), cond_dim, config.mlp_ratio, config.dropout,
                                 config.mlp_activation)
                for _ in range(count)
            )  # fmt: skip

        first_down = config.depth // 2 if config.inner_widths else config.depth
        self.blocks = blocks(config.width, first_down)  # level 0, down path (or all of it)
        widths, depths = config.widths, (config.depth, *config.inner_depths)
        self.down_blocks = nn.ModuleList(
            blocks(widths[i], depths[i] // 2) for i in range(1, len(widths) - 1)
        )
        self.inner_blocks = blocks(widths[-1], depths[-1]) if config.inner_widths else None
        # up paths, innermost-but-one level first; level 0 last
        self.up_blocks = nn.ModuleList(
            blocks(widths[i], depths[i] - depths[i] // 2) for i in reversed(range(len(widths) - 1))
        )
        self.merges = nn.ModuleList(Linear(4 * a, b) for a, b in itertools.pairwise(widths))
        self.splits = nn.ModuleList(Linear(b, 4 * a) for a, b in itertools.pairwise(widths))
        self.norm_out = AdaptiveLayerNormOut(config.width, cond_dim)
        self.patch_out = zero_init(Linear(config.width, patch_dim))
        self.cross: nn.ModuleDict | None = None  # "text-tokens": one per block, same layout
        if condition is not None and condition.kind == "text-tokens":
            text_dim = condition.text_dim

            def cross(width: int, count: int) -> nn.ModuleList:
                return cross_attentions(width, text_dim, heads_at(width), count)

            levels = range(1, len(widths) - 1)
            self.cross = nn.ModuleDict({
                "blocks": cross(config.width, first_down),
                "down": nn.ModuleList(cross(widths[i], depths[i] // 2) for i in levels),
                "inner": cross(widths[-1], depths[-1] if config.inner_widths else 0),
                "up": nn.ModuleList(
                    cross(widths[i], depths[i] - depths[i] // 2)
                    for i in reversed(range(len(widths) - 1))
                ),
            })  # fmt: skip

    def forward(self, z_t: Tensor, logsnr: Tensor, cond: Tensor | None = None) -> Tensor:
        expected = (self.channels, *([self.frames] if self.frames else []), self.size, self.size)
        if tuple(z_t.shape[1:]) != expected:
            raise ValueError(
                f"LatentViT expects [B, {', '.join(map(str, expected))}], got {tuple(z_t.shape)}"
            )
        batch, size, patch = z_t.shape[0], self.size, self.config.patch_size
        embedding = self.logsnr_embedding(logsnr)  # [B, cond_dim] fp32
        condition = self.condition_embedding(cond, batch)
        if condition is not None:
            embedding = embedding + condition
        text = self._text(cond, batch)
        if self.space_time is None:
            h = self.patch_in(to_tokens(z_t, patch)) + self.position  # [B, N, width]
        else:  # [B, T·N, width]
            h = self.space_time.tokens(
                self.patch_in(to_tokens(fold_frames(z_t), patch)), self.position
            )
        h = self._run(self.blocks, "blocks", None, h, embedding, text)
        if self.inner_blocks is not None:
            h = self._levels(h, embedding, size // patch, text)
        h = self.patch_out(self.norm_out(h, embedding))  # [B, (T·)N, C·p²]
        if self.space_time is None:
            return from_tokens(h, size, size, patch)  # [B, C, h, w]
        frames = from_tokens(self.space_time.per_frame(h), size, size, patch)  # [B·T, C, h, w]
        return unfold_frames(frames, self.frames)  # [B, C, T, h, w]

    def _text(self, cond: Tensor | None, batch: int) -> tuple[Tensor, Tensor] | None:
        """(tokens [B, L, D], mask [B, L]) for the cross-attentions; None without them."""
        if self.cross is None:
            return None
        condition = self.condition_embedding.config
        if cond is None:  # unconditional: the NULL caption (every token masked)
            cond = torch.zeros(
                batch, condition.text_tokens, condition.text_dim, device=self.position.device
            )
        return cond, token_mask(cond)

    def _run(
        self,
        stack: nn.Module,
        group: str,
        index: int | None,
        h: Tensor,
        embedding: Tensor,
        text: tuple[Tensor, Tensor] | None,
    ) -> Tensor:
        """A stack of blocks, each followed by its cross-attention to the text tokens (if any)."""
        cross: nn.Module | None = None
        if self.cross is not None and text is not None:
            cross = self.cross[group]
            if index is not None:
                cross = cast(nn.ModuleList, cross)[index]
        for position, block in enumerate(cast(nn.ModuleList, stack)):
            if self.space_time is None:
                h = block(h, embedding)
            else:
                h = self.space_time.run(block, position, h, embedding)
            if cross is not None and text is not None:
                h = cast(nn.ModuleList, cross)[position](h, *text)
        return h

    def _levels(
        self, h: Tensor, embedding: Tensor, grid: int, text: tuple[Tensor, Tensor] | None
    ) -> Tensor:
        """Down through the inner levels, the innermost blocks, and back up to level 0."""
        assert self.inner_blocks is not None
        skips: list[Tensor] = []
        for level, merge in enumerate(self.merges):
            if level > 0:
                h = self._run(self.down_blocks[level - 1], "down", level - 1, h, embedding, text)
            skips.append(h)
            h = merge(to_tokens(from_tokens(h, grid, grid), 2))  # [B, N/4, 4·w] → next width
            grid //= 2
        h = self._run(self.inner_blocks, "inner", None, h, embedding, text)
        for index, up in enumerate(self.up_blocks):
            split = self.splits[len(self.splits) - 1 - index]
            grid *= 2
            h = to_tokens(from_tokens(split(h), grid, grid, 2)) + skips.pop()  # [B, 4N, w]
            h = self._run(up, "up", index, h, embedding, text)
        return h
