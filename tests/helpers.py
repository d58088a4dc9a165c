"""Small helpers that several test modules share: seeded random inputs."""

from __future__ import annotations

import torch


def random_uint8(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Uniform uint8 values in [0, 255] of `shape` (images or clips), the same for the same seed."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)


def random_signed(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Uniform float64 values in [−1, 1) of `shape`, the same for the same seed."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1
