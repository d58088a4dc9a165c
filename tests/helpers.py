"""Small helpers that several test modules share: seeded random inputs."""

from __future__ import annotations

from typing import Any

import torch


def random_uint8(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Uniform uint8 values in [0, 255] of `shape` (images or clips), the same for the same seed."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)


def random_signed(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Uniform float64 values in [−1, 1) of `shape`, the same for the same seed."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1


def digit_images(batch: int = 6) -> torch.Tensor:
    """Uniform float32 images [batch, 1, 8, 8] in [−1, 1) (seed 1), for the tiny 8×8 models."""
    return torch.rand(batch, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1


def check_stage1_terms(terms: Any, rate_parts: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Stage-1 loss terms as the spec combines them: every term finite with one value per
    example, a positive rate (the sum of `rate_parts`) and distortion, and the loss
    rate + 1.5 · distortion (c_lf = 1.5)."""
    for name, value in vars(terms).items():
        assert value.shape == terms.loss.shape and torch.isfinite(value).all(), name
    assert (terms.rate_nats > 0).all() and (terms.distortion_nats > 0).all()
    torch.testing.assert_close(terms.rate_nats, rate_parts[0] + rate_parts[1])
    torch.testing.assert_close(terms.loss, terms.rate_nats + 1.5 * terms.distortion_nats)
