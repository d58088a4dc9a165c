"""AdamW with linear warm-up (spec §11: not given by the paper; our configurable choice)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn


@dataclass(frozen=True, kw_only=True)
class OptimConfig:
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    eps: float = 1e-8
    warmup_steps: int = 200
    decay: Literal["constant", "cosine"] = "constant"
    grad_clip: float = 1.0  # max global grad norm; 0 disables

    def __post_init__(self) -> None:
        # `not x > 0` rather than `x <= 0`: NaN fails every comparison
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite positive number, got {self.lr}")
        if len(self.betas) != 2 or not all(0 <= beta < 1 for beta in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if not (math.isfinite(self.eps) and self.eps > 0):
            raise ValueError(f"eps must be a finite positive number, got {self.eps}")
        for name in ("weight_decay", "grad_clip"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number ≥ 0, got {value}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be ≥ 0, got {self.warmup_steps}")


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    """Weight decay only on matrices/kernels (ndim ≥ 2), not on biases, norms or embeddings' 1-D."""
    decayed: list[nn.Parameter] = []
    plain: list[nn.Parameter] = []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decayed if parameter.ndim >= 2 else plain).append(parameter)
    groups = [
        {"params": decayed, "weight_decay": config.weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps)


def learning_rate(step: int, config: OptimConfig, max_steps: int) -> float:
    """lr at optimizer step `step` (0-based): linear warm-up, then constant or cosine decay."""
    if config.warmup_steps and step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.decay == "cosine" and max_steps > config.warmup_steps:
        progress = min(1.0, (step - config.warmup_steps) / (max_steps - config.warmup_steps))
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.lr


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
