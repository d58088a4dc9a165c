"""A ViT over latents: the stage-1 prior and the stage-2 base model (UL-SPEC §5, §8, §11).

It maps (z_t, λ, cond) to a raw output of z_t's shape; the Denoiser interprets it (v, ε or x).
Conditioning on λ (and the class/text condition) is through adaptive LayerNorm in every block.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from unified_latents.config import ConfigError
from unified_latents.networks.conditioning import ConditionConfig, ConditionEmbedding
from unified_latents.networks.layers import (
    AdaptiveLayerNormOut,
    LogSNREmbedding,
    MLPActivation,
    TransformerBlock,
    check_mlp_activation,
    from_tokens,
    to_tokens,
    zero_init,
)


@dataclass(frozen=True, kw_only=True)
class ViTConfig:
    width: int = 128
    depth: int = 4
    heads: int = 4
    patch_size: int = 1  # latents are small; the paper does not patch them
    mlp_ratio: float = 4.0
    mlp_activation: MLPActivation = "gelu_tanh"  # see networks/layers.py; presets use "gelu"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("width", "depth", "heads", "patch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"vit.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.width % self.heads:
            raise ValueError(f"vit.width={self.width} is not divisible by vit.heads={self.heads}")
        if self.mlp_ratio <= 0:
            raise ValueError(f"vit.mlp_ratio must be > 0, got {self.mlp_ratio}")
        check_mlp_activation(self.mlp_activation, "vit")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"vit.dropout must be in [0, 1), got {self.dropout}")


class LatentViT(nn.Module):
    """patchify → Linear → + position embedding → conditioned TransformerBlocks → adaptive norm →
    zero-init Linear → unpatchify. The output is exactly 0 at initialisation."""

    def __init__(
        self,
        config: ViTConfig,
        channels: int,
        size: int,
        condition: ConditionConfig | None = None,
    ) -> None:
        super().__init__()
        if size % config.patch_size:
            raise ConfigError(
                f"latent size {size} is not divisible by vit.patch_size={config.patch_size}"
            )
        self.config, self.channels, self.size = config, channels, size
        patch_dim = channels * config.patch_size**2
        num_tokens = (size // config.patch_size) ** 2
        self.patch_in = nn.Linear(patch_dim, config.width)
        self.position = nn.Parameter(torch.randn(1, num_tokens, config.width) * 0.02)
        self.logsnr_embedding = LogSNREmbedding(config.width)
        self.condition_embedding = ConditionEmbedding(condition or ConditionConfig(), config.width)
        self.blocks = nn.ModuleList(
            TransformerBlock(config.width, config.heads, config.width, config.mlp_ratio,
                             config.dropout, config.mlp_activation)
            for _ in range(config.depth)
        )  # fmt: skip
        self.norm_out = AdaptiveLayerNormOut(config.width, config.width)
        self.patch_out = zero_init(nn.Linear(config.width, patch_dim))

    def forward(self, z_t: Tensor, logsnr: Tensor, cond: Tensor | None = None) -> Tensor:
        batch, channels, height, width = z_t.shape
        if (channels, height, width) != (self.channels, self.size, self.size):
            raise ValueError(
                f"LatentViT expects [B, {self.channels}, {self.size}, {self.size}], "
                f"got {tuple(z_t.shape)}"
            )
        embedding = self.logsnr_embedding(logsnr)  # [B, width] fp32
        condition = self.condition_embedding(cond, batch)
        if condition is not None:
            embedding = embedding + condition
        h = self.patch_in(to_tokens(z_t, self.config.patch_size)) + self.position  # [B, N, width]
        for block in self.blocks:
            h = block(h, embedding)
        h = self.patch_out(self.norm_out(h, embedding))  # [B, N, C·p²]
        return from_tokens(h, height, width, self.config.patch_size)  # [B, C, h, w]
