"""Loss weightings w(λ) and noise-level samplers used by the objectives (spec §3, §5, §6, §9)."""

from __future__ import annotations

import torch
from torch import Tensor


def elbo_weight(logsnr: Tensor) -> Tensor:
    """w(λ) ≡ 1: the unweighted ELBO. The prior MUST use it, or the rate bound breaks (spec §5)."""
    return torch.ones_like(logsnr, dtype=torch.float32)


def sigmoid_weight(logsnr: Tensor, bias: float) -> Tensor:
    """w(λ) = sigmoid(b − λ) (spec §6); tends to the ELBO weight 1 as b → +∞."""
    return torch.sigmoid(bias - logsnr.float())


def stratified_uniform(
    batch_size: int, *, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> Tensor:
    """Stratified t_i = (u + i/B) mod 1 with one shared u ~ U(0, 1) (spec §3, as in VDM)."""
    u = torch.rand((), generator=generator, device=device)
    return torch.remainder(u + torch.arange(batch_size, device=device) / batch_size, 1.0)
