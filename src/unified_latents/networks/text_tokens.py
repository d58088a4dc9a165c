"""Token-level text conditioning (condition.kind = "text-tokens").

The condition of an example is MiniLM's last-layer features of its caption, one row per token,
padded or truncated to a fixed `condition.text_tokens` rows: a float tensor [B, L, text_dim].
Padding rows are exactly zero, so the padding mask travels inside the tensor (a real token's
feature is a LayerNorm output and never all-zero): `token_mask(cond)` recovers it. This keeps the
condition one tensor, so label dropout (`torch.where` per example), classifier-free guidance
(concatenating the conditional and the NULL batch) and sampling need no special cases.

The empty caption is the NULL condition: every row zero, every token masked (`encode_tokens`
maps "" and whitespace to it rather than to the [CLS] [SEP] features of an empty string), so
caption dropout, `--prompt ""` and unconditional sampling are the same input.

The ViT reads the tokens through cross-attention (`TextCrossAttention`) after every transformer
block, and a pooled summary (masked mean → Linear, `ConditionEmbedding`) joins the λ embedding
that drives adaptive LayerNorm. Cross-attention rather than prepending text tokens to the image
tokens: the multi-level ViT merges 2×2 groups of image tokens between levels, which extra tokens
would not survive, and the transformer blocks (and their activation checkpointing) keep their
signature and their checkpoints' keys. Each cross-attention also attends to one learned NULL
token that is never masked, so an all-masked caption still has a key and the softmax is defined.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unified_latents.networks.cpu_linear import Linear
from unified_latents.networks.layers import zero_init

if TYPE_CHECKING:
    from unified_latents.networks.text_encoder import SentenceEncoder


def token_mask(tokens: Tensor) -> Tensor:
    """True where a row of `tokens` [B, L, D] is a real token (not all-zero padding) → [B, L]."""
    return (tokens != 0).any(dim=-1)


def check_tokens(tokens: Tensor, length: int, dim: int) -> None:
    if tokens.ndim != 3 or tokens.shape[1:] != (length, dim):
        raise ValueError(
            f"text-tokens cond must be [B, {length}, {dim}] (condition.text_tokens, "
            f"condition.text_dim), got {tuple(tokens.shape)}"
        )


@torch.no_grad()
def encode_tokens(
    encoder: SentenceEncoder, texts: Sequence[str], length: int, batch_size: int = 64
) -> tuple[Tensor, Tensor]:
    """Per-token features [N, length, dim] float32 and the padding mask [N, length] (True = a
    real token) of `texts`, on the encoder's device. Captions longer than `length` tokens (with
    [CLS] and [SEP]) are truncated; padding rows are zero; empty captions are all padding."""
    if isinstance(texts, str):
        raise TypeError("encode_tokens() takes a sequence of strings; wrap a text in a list")
    if length < 1:
        raise ValueError(f"length must be ≥ 1, got {length}")
    device = encoder.device
    features = torch.zeros(len(texts), length, encoder.dim, device=device)
    mask = torch.zeros(len(texts), length, dtype=torch.bool, device=device)
    rows = [i for i, text in enumerate(texts) if text.strip()]
    with torch.autocast(device_type=device.type, enabled=False):
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            ids, types, attention = encoder.tokenize([texts[i] for i in chunk])
            ids, types, attention = ids[:, :length], types[:, :length], attention[:, :length]
            hidden = encoder.hidden_states(ids.to(device), types.to(device), attention.to(device))
            real = attention.to(device).bool()  # [n, T]
            index = torch.tensor(chunk, device=device)
            width = hidden.shape[1]
            features[index, :width] = hidden.float() * real[..., None]
            mask[index, :width] = real
    return features, mask


class TextCrossAttention(nn.Module):
    """Image tokens [B, N, dim] attend to text tokens [B, L, text_dim] plus a learned NULL token;
    padding tokens are masked out. Residual with a zero-initialised output projection, so a new
    cross-attention starts as the identity."""

    def __init__(self, dim: int, text_dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"cross-attention width {dim} is not divisible by heads={heads}")
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.query = Linear(dim, dim)
        self.key_value = Linear(text_dim, 2 * dim)
        self.null_token = nn.Parameter(torch.randn(text_dim) * 0.02)
        self.out = zero_init(Linear(dim, dim))

    def forward(self, x: Tensor, tokens: Tensor, mask: Tensor) -> Tensor:
        batch, length, dim = x.shape
        null = self.null_token.to(tokens.dtype).expand(batch, 1, -1)
        context = torch.cat([null, tokens], dim=1)  # [B, 1 + L, text_dim]
        keep = torch.cat([mask.new_ones(batch, 1), mask], dim=1)[:, None, None, :]  # [B,1,1,1+L]

        def heads(y: Tensor) -> Tensor:  # [B, T, dim] → [B, heads, T, dim / heads]
            return y.reshape(batch, y.shape[1], self.heads, -1).transpose(1, 2)

        key, value = self.key_value(context).chunk(2, dim=-1)
        query = self.query(self.norm(x))
        attended = F.scaled_dot_product_attention(
            heads(query), heads(key).to(query.dtype), heads(value).to(query.dtype), attn_mask=keep
        )
        return x + self.out(attended.transpose(1, 2).reshape(batch, length, dim))


def cross_attentions(dim: int, text_dim: int, heads: int, count: int) -> nn.ModuleList:
    return nn.ModuleList(TextCrossAttention(dim, text_dim, heads) for _ in range(count))
