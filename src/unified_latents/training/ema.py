"""Exponential moving average of model weights; evaluation and sampling use the EMA copy."""

from __future__ import annotations

import copy

import torch
from torch import nn


def make_ema(model: nn.Module) -> nn.Module:
    """A frozen deep copy of `model` that `update_ema` keeps as an average of its weights."""
    ema = copy.deepcopy(model).eval()
    for parameter in ema.parameters():
        parameter.requires_grad_(False)
    return ema


def ema_decay_at(step: int, decay: float) -> float:
    """Warm-up (1 + n)/(10 + n) so early averages are not dominated by the random init."""
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    ema_params = dict(ema.named_parameters())
    for name, parameter in model.named_parameters():
        ema_params[name].lerp_(parameter.detach(), 1.0 - decay)
    ema_buffers = dict(ema.named_buffers())
    for name, buffer in model.named_buffers():
        ema_buffers[name].copy_(buffer)
