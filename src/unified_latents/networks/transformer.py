"""The transformer pieces of the ViT prior/base model and the UViT decoder: self-attention (with
the explicit product CPU bf16 training prefers), the MLP activation, the adaptive-LayerNorm block
and output norm, and images ↔ tokens. Conditioning enters as in `layers.py`: zero-initialised
modulation, so every block starts as the identity.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unified_latents.networks.checkpointing import Checkpointed
from unified_latents.networks.cpu_linear import Linear
from unified_latents.networks.fused import addcmul, split_heads
from unified_latents.networks.layers import autocast_off, layer_norm, modulate, zero_init


class Attention(nn.Module):
    """Multi-head self-attention over tokens [B, N, D] with PyTorch's fused SDPA kernel."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by heads={heads}")
        self.heads, self.dropout = heads, dropout
        self.qkv = Linear(dim, 3 * dim)
        self.out = Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, dim = x.shape
        q, k, v = split_heads(self.qkv(x), self.heads)  # each [B, heads, N, D/heads]
        dropout = self.dropout if self.training else 0.0
        if _explicit_attention_is_faster(q):
            h = explicit_attention(q, k, v, dropout)
        else:
            h = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)  # [B, heads, N, D/h]
        return self.out(h.transpose(1, 2).reshape(batch, tokens, dim))


# Largest B·heads·N² for which `explicit_attention` may materialise the attention matrix
# (2^25 entries = 128 MiB in fp32); above it the fused kernel's O(N) memory matters more.
EXPLICIT_ATTENTION_MAX_SCORES = 2**25


def _explicit_attention_is_faster(q: Tensor) -> bool:
    """On CPU, PyTorch's fused (flash) SDPA kernel has a bf16/fp16 *backward* several times
    slower than the unfused math at our token counts (it was half of a bf16 training step; an
    fp32 backward or any forward is as fast as the unfused path), so training in reduced
    precision on CPU uses `explicit_attention` while the attention matrix is small."""
    batch, heads, tokens, _ = q.shape
    return (
        q.device.type == "cpu"
        and q.dtype in (torch.bfloat16, torch.float16)
        and torch.is_grad_enabled()
        and q.requires_grad
        and batch * heads * tokens * tokens <= EXPLICIT_ATTENTION_MAX_SCORES
    )


def explicit_attention(q: Tensor, k: Tensor, v: Tensor, dropout: float = 0.0) -> Tensor:
    """softmax(q kᵀ / √d) v with the precision of the fused kernels: scores and softmax in fp32,
    the probabilities cast to v's dtype for the weighted sum. q, k, v: [B, heads, N, d]."""
    scale = q.shape[-1] ** -0.5
    # q and k are usually strided views into one qkv projection: one contiguous fp32 copy each
    # (the batched matmul would otherwise copy them again), scaled in place.
    contiguous = torch.contiguous_format
    q = q.to(torch.float32, memory_format=contiguous, copy=True).mul_(scale)
    k = k.to(torch.float32, memory_format=contiguous)
    with autocast_off(q.device):
        scores = torch.matmul(q, k.transpose(-2, -1))  # [B, heads, N, N]
        weights = torch.softmax(scores, dim=-1).to(v.dtype)
    if dropout > 0.0:
        weights = F.dropout(weights, dropout)
    return torch.matmul(weights, v)  # [B, heads, N, d]


# The transformer MLP's nonlinearity. "gelu_tanh" (the tanh approximation) is the dataclass
# default so configs saved before this field existed rebuild the same function; the presets use
# exact "gelu": on CPU its forward + backward costs less than half of the tanh form's.
MLPActivation = Literal["gelu_tanh", "gelu", "silu"]
MLP_ACTIVATIONS: tuple[str, ...] = get_args(MLPActivation)


def check_mlp_activation(name: str, owner: str) -> None:
    """Reject an unknown activation name; `owner` prefixes the key in the message ("vit")."""
    if name not in MLP_ACTIVATIONS:
        choices = ", ".join(MLP_ACTIVATIONS)
        raise ValueError(f"{owner}.mlp_activation={name!r}; choose one of {choices}")


def mlp_activation(name: MLPActivation) -> nn.Module:
    check_mlp_activation(name, "transformer")
    if name == "silu":
        return nn.SiLU()
    return nn.GELU(approximate="tanh" if name == "gelu_tanh" else "none")


class TransformerBlock(Checkpointed):
    """Pre-norm attention + MLP with adaptive LayerNorm: (shift, scale, gate) per branch come from
    `cond` through a zero-initialised Linear, so the gates start at 0 and the block at identity."""

    def __init__(
        self,
        dim: int,
        heads: int,
        cond_dim: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        activation: MLPActivation = "gelu_tanh",
    ) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.attention = Attention(dim, heads, dropout)
        self.mlp = nn.Sequential(
            Linear(dim, hidden), mlp_activation(activation), nn.Dropout(dropout),
            Linear(hidden, dim),
        )  # fmt: skip
        self.modulation = zero_init(Linear(cond_dim, 6 * dim))

    def body(self, x: Tensor, cond: Tensor | None) -> Tensor:
        assert cond is not None, "a transformer block needs its conditioning vector"
        params = self.modulation(F.silu(cond))[:, None].chunk(6, dim=2)  # 6 × [B, 1, D]
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = params
        # x + gate·f(LN(x)·(1 + scale) + shift); each "a + b·c" is one addcmul (networks/fused.py):
        # one [B, N, D] pass and temporary fewer than a mul then an add, forward and backward.
        x = addcmul(x, gate_a, self.attention(modulate(layer_norm(x), shift_a, scale_a)))
        h = self.mlp(modulate(layer_norm(x), shift_m, scale_m))
        return addcmul(x, gate_m, h)  # [B, N, D]


class AdaptiveLayerNormOut(nn.Module):
    """The final norm of a transformer: LayerNorm modulated by `cond` (zero-init shift/scale)."""

    def __init__(self, dim: int, cond_dim: int) -> None:
        super().__init__()
        self.to_shift_scale = zero_init(Linear(cond_dim, 2 * dim))

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        shift, scale = self.to_shift_scale(F.silu(cond))[:, None].chunk(2, dim=2)  # [B, 1, D]
        return modulate(layer_norm(x), shift, scale)  # [B, N, D]


def to_tokens(x: Tensor, patch_size: int = 1) -> Tensor:
    """[B, C, H, W] → [B, (H/p)·(W/p), C·p²]: non-overlapping p×p patches, row-major."""
    if patch_size > 1:
        x = F.pixel_unshuffle(x, patch_size)  # [B, C·p², H/p, W/p]
    return x.flatten(2).transpose(1, 2)


def from_tokens(tokens: Tensor, height: int, width: int, patch_size: int = 1) -> Tensor:
    """Inverse of `to_tokens`: [B, (H/p)·(W/p), C·p²] → [B, C, H, W]."""
    grid_h, grid_w = height // patch_size, width // patch_size
    x = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, grid_h, grid_w)
    return F.pixel_shuffle(x, patch_size) if patch_size > 1 else x
