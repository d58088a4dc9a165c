"""Building blocks shared by the encoder, the prior/base ViT and the UViT decoder (the transformer
blocks and tokens: `transformer.py`).

Conditioning enters through adaptive normalisation: a vector `cond` [B, cond_dim] (the λ embedding,
plus a class/text embedding where used) produces per-channel scale/shift (and gates for transformer
blocks) from zero-initialised linear maps, so every conditioned block starts as its unconditioned
(or identity) version. Norms run in fp32 so they stay accurate under bf16 autocast.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unified_latents.networks.checkpointing import Checkpointed
from unified_latents.networks.cpu_linear import Linear
from unified_latents.networks.fused import addcmul

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
        self.mlp = nn.Sequential(Linear(2 * num_frequencies, dim), nn.SiLU(), Linear(dim, dim))

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
        self.to_scale_shift = zero_init(Linear(cond_dim, 2 * channels))

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
