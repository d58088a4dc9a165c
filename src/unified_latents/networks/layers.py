"""Building blocks shared by the encoder, the prior/base ViT and the UViT decoder.

Conditioning enters through adaptive normalisation: a vector `cond` [B, cond_dim] (the λ embedding,
plus a class/text embedding where used) produces per-channel scale/shift (and gates for transformer
blocks) from zero-initialised linear maps, so every conditioned block starts as its unconditioned
(or identity) version. Norms run in fp32 so they stay accurate under bf16 autocast.
"""

from __future__ import annotations

import contextlib
import math
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unified_latents.networks.checkpointing import Checkpointed
from unified_latents.networks.fused import addcmul, split_heads

# λ Fourier features: the lowest frequency has a period of 160, so over λ ∈ [−20, 20] its sine
# sweeps a quarter period (monotone, no aliasing); the highest has period 1 to resolve small Δλ.
LOGSNR_PERIOD_MAX = 160.0
LOGSNR_PERIOD_MIN = 1.0


def group_count(channels: int, max_groups: int = 32, min_group_size: int = 4) -> int:
    """The largest divisor of `channels` up to `max_groups` leaving ≥ `min_group_size` per group;
    small layers (e.g. 16 channels → 4 groups) keep statistics over several channels."""
    upper = max(1, min(max_groups, channels // min_group_size))
    return next(g for g in range(upper, 0, -1) if channels % g == 0)


def autocast_off(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """Disable autocast inside (fp32 math); nothing to disable on `meta` (shape-only tensors,
    e.g. parameter/FLOP counts), where torch.autocast does not exist."""
    if device.type == "meta":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, enabled=False)


def zero_init(module: nn.Linear | nn.Conv2d) -> nn.Linear | nn.Conv2d:
    """Zero weights and bias: the layer's output starts at exactly 0."""
    nn.init.zeros_(module.weight)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    return module


def group_norm(
    x: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-6,
) -> Tensor:
    """GroupNorm (affine if `weight`/`bias` are given) computed in fp32, returned in the input
    dtype. The CPU kernel does that itself for bf16 input (fp32 statistics and affine weights, one
    rounding of the output), so there the input is not copied to fp32 and back; elsewhere it is."""
    weight = None if weight is None else weight.float()
    bias = None if bias is None else bias.float()
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.bfloat16):
        return F.group_norm(x, num_groups, weight, bias, eps)
    return F.group_norm(x.float(), num_groups, weight, bias, eps).to(x.dtype)


def layer_norm(x: Tensor) -> Tensor:
    """Affine-free LayerNorm over the last dim, computed in fp32, returned in the input dtype."""
    return F.layer_norm(x.float(), x.shape[-1:], eps=1e-6).to(x.dtype)


def modulate(h: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """h·(1 + scale) + shift as one fused op; shift/scale broadcast against h."""
    return addcmul(shift, h, 1 + scale)


class LogSNREmbedding(nn.Module):
    """λ [B] → fixed log-spaced Fourier features (sin, cos) → MLP → [B, dim], all in fp32."""

    frequencies: Tensor  # [F] angular frequencies

    def __init__(self, dim: int, num_frequencies: int = 32) -> None:
        super().__init__()
        periods = torch.logspace(
            math.log10(LOGSNR_PERIOD_MAX), math.log10(LOGSNR_PERIOD_MIN), num_frequencies
        )
        # Not persistent: a fixed function of the constructor arguments, not a learned state.
        self.register_buffer("frequencies", 2 * math.pi / periods, persistent=False)
        self.mlp = nn.Sequential(
            nn.Linear(2 * num_frequencies, dim), nn.SiLU(), nn.Linear(dim, dim)
        )

    def forward(self, logsnr: Tensor) -> Tensor:
        # The embedding must distinguish nearby λ, which bf16 (8 mantissa bits) cannot.
        with autocast_off(logsnr.device):
            angles = logsnr.float()[:, None] * self.frequencies.float()[None]  # [B, F]
            features = torch.cat([angles.sin(), angles.cos()], dim=1)  # [B, 2F]
            return self.mlp(features)  # [B, dim] fp32


class AdaptiveGroupNorm(nn.Module):
    """GroupNorm without affine, then x·(1 + scale) + shift with (scale, shift) from `cond`."""

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.num_groups = group_count(channels)
        self.to_scale_shift = zero_init(nn.Linear(cond_dim, 2 * channels))

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        scale, shift = self.to_scale_shift(F.silu(cond))[:, :, None, None].chunk(2, dim=1)
        return modulate(group_norm(x, self.num_groups), shift, scale).to(x.dtype)  # [B, C, H, W]


class GroupNorm(nn.GroupNorm):
    """A GroupNorm with a robust group count that computes in fp32 under autocast."""

    def __init__(self, channels: int) -> None:
        super().__init__(group_count(channels), channels, eps=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


class ResBlock(Checkpointed):
    """norm → SiLU → conv3×3 → norm (adaptive if conditioned) → SiLU → dropout → conv3×3 (zero
    init), plus a 1×1 skip when the channel count changes. At init it is its skip path."""

    def __init__(self, in_ch: int, out_ch: int, cond_dim: int | None, dropout: float = 0.0) -> None:
        super().__init__()
        self.conditioned = cond_dim is not None
        self.norm_in = GroupNorm(in_ch)
        self.conv_in = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.norm_mid: nn.Module = (
            AdaptiveGroupNorm(out_ch, cond_dim) if cond_dim is not None else GroupNorm(out_ch)
        )
        self.dropout = nn.Dropout(dropout)
        self.conv_out = zero_init(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.skip: nn.Module = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def body(self, x: Tensor, cond: Tensor | None) -> Tensor:
        h = self.conv_in(F.silu(self.norm_in(x)))  # [B, out, H, W]
        h = self.norm_mid(h, cond) if self.conditioned else self.norm_mid(h)
        h = self.conv_out(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head self-attention over tokens [B, N, D] with PyTorch's fused SDPA kernel."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by heads={heads}")
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

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
            nn.Linear(dim, hidden), mlp_activation(activation), nn.Dropout(dropout),
            nn.Linear(hidden, dim),
        )  # fmt: skip
        self.modulation = zero_init(nn.Linear(cond_dim, 6 * dim))

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
        self.to_shift_scale = zero_init(nn.Linear(cond_dim, 2 * dim))

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        shift, scale = self.to_shift_scale(F.silu(cond))[:, None].chunk(2, dim=2)  # [B, 1, D]
        return modulate(layer_norm(x), shift, scale)  # [B, N, D]


class Downsample(nn.Module):
    """Halve the resolution with a stride-2 3×3 convolution."""

    def __init__(self, in_ch: int, out_ch: int | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch or in_ch, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)  # [B, out, H/2, W/2]


class Upsample(nn.Module):
    """Double the resolution: nearest-neighbour (no checkerboard artefacts) then a 3×3 conv."""

    def __init__(self, in_ch: int, out_ch: int | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch or in_ch, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))  # [B, out, 2H, 2W]


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
