"""Class and text conditioning, with a learned NULL condition for classifier-free guidance.

`cond` is, per kind (UL-SPEC §8):
- "none":  None.
- "class": integer labels [B] in [0, num_classes]; the index `num_classes` is the NULL class.
- "text":  float sentence embeddings [B, text_dim]; real ones are unit-norm, so an all-zero row can
           safely mean NULL and is replaced by a learned null vector.
- "text-tokens": per-token caption features [B, text_tokens, text_dim], zero rows = padding, all
           rows zero = NULL (the empty caption); see networks/text_tokens.py. Here they give the
           pooled vector (masked mean → Linear) added to the λ embedding; the ViT also
           cross-attends to the tokens.
A conditioned model given `cond=None` treats the whole batch as NULL (unconditional sampling).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from unified_latents.networks.cpu_linear import Linear
from unified_latents.networks.text_tokens import check_tokens, token_mask

ConditionKind = Literal["none", "class", "text", "text-tokens"]


@dataclass(frozen=True, kw_only=True)
class ConditionConfig:
    kind: ConditionKind = "none"
    num_classes: int = 0  # real classes; the embedding table has one more row for NULL
    text_dim: int = 384  # all-MiniLM-L6-v2 sentence embeddings (and per-token features)
    text_tokens: int = 32  # "text-tokens": caption tokens kept, [CLS] and [SEP] included

    def __post_init__(self) -> None:
        if self.kind not in get_args(ConditionKind):
            raise ValueError(
                f"condition.kind={self.kind!r}; choose one of {', '.join(get_args(ConditionKind))}"
            )
        if self.num_classes < 0:
            raise ValueError(f"condition.num_classes must be ≥ 0, got {self.num_classes}")
        if self.kind == "class" and self.num_classes < 1:
            raise ValueError("class conditioning needs condition.num_classes ≥ 1")
        if self.is_text and self.text_dim < 1:
            raise ValueError(f"text conditioning needs condition.text_dim ≥ 1, got {self.text_dim}")
        if self.text_tokens < 1:
            raise ValueError(f"condition.text_tokens must be ≥ 1, got {self.text_tokens}")

    @property
    def is_text(self) -> bool:
        return self.kind in ("text", "text-tokens")


def null_condition(config: ConditionConfig, batch_size: int, device: torch.device) -> Tensor | None:
    """The NULL condition for a batch: None, the NULL class index, or all-zero text rows."""
    if config.kind == "text-tokens":
        return torch.zeros(batch_size, config.text_tokens, config.text_dim, device=device)
    if config.kind == "class":
        return torch.full((batch_size,), config.num_classes, dtype=torch.long, device=device)
    if config.kind == "text":
        return torch.zeros(batch_size, config.text_dim, device=device)
    return None


def drop_condition(
    cond: Tensor, config: ConditionConfig, drop_prob: float, generator: torch.Generator | None
) -> Tensor:
    """Replace each example's condition by NULL with probability `drop_prob` (label dropout)."""
    if config.kind == "none":
        raise ValueError("drop_condition needs a class- or text-conditioned config")
    if not 0.0 <= drop_prob <= 1.0:
        raise ValueError(f"drop_prob must be in [0, 1], got {drop_prob}")
    # Draw on the generator's device so a CPU generator can drive CUDA batches reproducibly.
    draw_device = generator.device if generator is not None else cond.device
    drop = torch.rand(cond.shape[0], generator=generator, device=draw_device) < drop_prob  # [B]
    drop = drop.to(cond.device).reshape(-1, *([1] * (cond.ndim - 1)))
    null = null_condition(config, cond.shape[0], cond.device)
    assert null is not None
    return torch.where(drop, null.to(cond.dtype), cond)


class ConditionEmbedding(nn.Module):
    """cond → [B, dim], added to the λ embedding; returns None for kind "none"."""

    def __init__(self, config: ConditionConfig, dim: int) -> None:
        super().__init__()
        self.config = config
        self.class_embedding: nn.Embedding | None = None
        self.text_projection: nn.Linear | None = None
        if config.kind == "class":
            self.class_embedding = nn.Embedding(config.num_classes + 1, dim)
            nn.init.normal_(self.class_embedding.weight, std=0.02)
        elif config.is_text:
            self.text_projection = Linear(config.text_dim, dim)
            self.null_text = nn.Parameter(torch.randn(dim) * 0.02)

    def forward(self, cond: Tensor | None, batch_size: int) -> Tensor | None:
        if self.config.kind == "none":
            if cond is not None:
                raise ValueError(
                    "this network is unconditional (condition.kind='none'); cond must be None"
                )
            return None
        if cond is None:
            return self.null_embedding().expand(batch_size, -1)  # [B, dim]
        if cond.shape[0] != batch_size:
            raise ValueError(f"cond has batch size {cond.shape[0]}, the input has {batch_size}")
        if self.class_embedding is not None:
            return self._embed_class(cond)
        if self.config.kind == "text-tokens":
            return self._embed_tokens(cond)
        return self._embed_text(cond)

    def null_embedding(self) -> Tensor:
        """The embedding of the NULL condition [1, dim]."""
        if self.class_embedding is not None:
            return self.class_embedding.weight[self.config.num_classes][None]
        return self.null_text[None]

    def _embed_class(self, labels: Tensor) -> Tensor:
        assert self.class_embedding is not None
        if labels.ndim != 1 or labels.is_floating_point():
            raise ValueError(
                f"class cond must be integer labels [B], got {tuple(labels.shape)} {labels.dtype}"
            )
        checkable = labels.numel() and labels.device.type != "meta"  # meta: shapes only
        if checkable and (labels.min() < 0 or labels.max() > self.config.num_classes):
            raise ValueError(
                f"class labels must be in [0, {self.config.num_classes}] "
                f"({self.config.num_classes} = NULL)"
            )
        return self.class_embedding(labels)  # [B, dim]

    def _embed_text(self, text: Tensor) -> Tensor:
        assert self.text_projection is not None
        if text.ndim != 2 or text.shape[1] != self.config.text_dim:
            raise ValueError(
                f"text cond must be [B, {self.config.text_dim}], got {tuple(text.shape)}"
            )
        is_null = (text == 0).all(dim=1, keepdim=True)  # [B, 1]
        embedded = self.text_projection(text.float())  # [B, dim]
        return torch.where(is_null, self.null_embedding().to(embedded.dtype), embedded)

    def _embed_tokens(self, tokens: Tensor) -> Tensor:
        """The pooled caption: masked mean of the token features → Linear (NULL if all masked)."""
        assert self.text_projection is not None
        check_tokens(tokens, self.config.text_tokens, self.config.text_dim)
        mask = token_mask(tokens)  # [B, L]
        weights = mask.to(torch.float32)[..., None]  # [B, L, 1]
        pooled = (tokens.float() * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
        embedded = self.text_projection(pooled)  # [B, dim]
        is_null = ~mask.any(dim=1, keepdim=True)  # [B, 1]
        return torch.where(is_null, self.null_embedding().to(embedded.dtype), embedded)
