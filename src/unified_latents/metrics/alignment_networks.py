"""The networks of the text–image alignment metric trained in this project (`metrics.alignment`).

- `ImageEncoder`: a small CNN trained from scratch on uint8 RGB images mapped to [-1, 1].
- `ContrastiveModel`: that CNN and a learned linear projection of the frozen MiniLM sentence
  embedding into one unit-norm embedding space, with a learned temperature (CLIP-style).
- `EmojiClassifier`: the same CNN architecture (separate weights) with a category and a
  subcategory head.

The text encoder itself is not part of these modules: it stays frozen and is never saved with
them; the contrastive model only sees its pooled sentence embeddings ([N, text_dim]).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# CLIP's initial temperature 0.07 and its cap of 100 on the logit scale.
INITIAL_LOGIT_SCALE = math.log(1 / 0.07)
MAX_LOGIT_SCALE = math.log(100.0)


@dataclass(frozen=True, kw_only=True)
class AlignmentConfig:
    """Sizes of the alignment metric's networks (defaults: the trained 32×32 metric)."""

    image_size: int = 32
    widths: tuple[int, ...] = (24, 48, 96, 192)  # stem, then one conv + 2×2 pool per entry
    feature_dim: int = 256  # the image encoder's output
    embed_dim: int = 128  # the shared image–text space
    text_dim: int = 384  # MiniLM's sentence embedding
    num_categories: int = 10
    num_subcategories: int = 99

    def __post_init__(self) -> None:
        if self.image_size < 8 or self.image_size & (self.image_size - 1):
            raise ValueError(f"image_size must be a power of two ≥ 8, got {self.image_size}")
        if len(self.widths) < 2:
            raise ValueError(f"widths needs a stem and at least one block, got {self.widths}")
        if self.image_size // self.stem_stride < 2 ** (len(self.widths) - 1):
            raise ValueError(f"{len(self.widths) - 1} poolings do not fit {self.image_size}px")

    @property
    def stem_stride(self) -> int:
        """64×64 inputs are halved by the stem so that both sizes cost about the same."""
        return max(1, self.image_size // 32)


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3×3 conv → BatchNorm → ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ImageEncoder(nn.Module):
    """[B, 3, S, S] in [-1, 1] → features [B, feature_dim]: a stem, conv + max-pool blocks, an
    adaptive average pool to 4×4 (keeps coarse layout) and a linear layer."""

    def __init__(self, config: AlignmentConfig) -> None:
        super().__init__()
        widths = config.widths
        blocks: list[nn.Module] = [_conv(3, widths[0], stride=config.stem_stride)]
        for in_width, out_width in itertools.pairwise(widths):
            blocks += [_conv(in_width, out_width), nn.MaxPool2d(2)]
        self.trunk = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.head = nn.Sequential(
            nn.Linear(widths[-1] * 16, config.feature_dim, bias=False),
            nn.BatchNorm1d(config.feature_dim),
            nn.ReLU(inplace=True),
        )
        # `Module.to` takes memory_format at run time; its type stubs do not list it.
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def forward(self, x: Tensor) -> Tensor:
        # channels_last makes CPU convolutions about twice as fast (and costs nothing on CUDA).
        return self.head(self.trunk(x.contiguous(memory_format=torch.channels_last)))


class ContrastiveModel(nn.Module):
    """Image and (frozen) sentence embeddings projected to one unit-norm space [·, embed_dim]."""

    def __init__(self, config: AlignmentConfig) -> None:
        super().__init__()
        self.image_encoder = ImageEncoder(config)
        self.image_projection = nn.Linear(config.feature_dim, config.embed_dim)
        self.text_projection = nn.Linear(config.text_dim, config.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(INITIAL_LOGIT_SCALE))

    def embed_images(self, x: Tensor) -> Tensor:
        """Unit-norm image embeddings [B, embed_dim] of images in [-1, 1]."""
        return F.normalize(self.image_projection(self.image_encoder(x)), dim=-1)

    def embed_text(self, sentence_features: Tensor) -> Tensor:
        """Unit-norm text embeddings [B, embed_dim] of sentence embeddings [B, text_dim]."""
        return F.normalize(self.text_projection(sentence_features), dim=-1)

    def scale(self) -> Tensor:
        """exp(logit scale) = 1 / temperature, capped at 100 as in CLIP."""
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()


class EmojiClassifier(nn.Module):
    """The image encoder architecture with two linear heads: category and subcategory logits."""

    def __init__(self, config: AlignmentConfig, dropout: float = 0.2) -> None:
        super().__init__()
        self.image_encoder = ImageEncoder(config)
        self.dropout = nn.Dropout(dropout)
        self.category_head = nn.Linear(config.feature_dim, config.num_categories)
        self.subcategory_head = nn.Linear(config.feature_dim, config.num_subcategories)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(category logits [B, num_categories], subcategory logits [B, num_subcategories])."""
        features = self.dropout(self.image_encoder(x))
        return self.category_head(features), self.subcategory_head(features)
