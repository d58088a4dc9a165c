"""Activation checkpointing of residual and transformer blocks (train.activation_checkpointing):
a block's activations are recomputed in the backward instead of kept, trading about one more
forward per step for memory that no longer grows with the depth of the block's internals."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint


class Checkpointed(nn.Module):
    """A block whose activations can be recomputed in the backward instead of stored
    (`set_activation_checkpointing`): less memory for about one more forward per step."""

    checkpointing: bool = False

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        if self.checkpointing and self.training and torch.is_grad_enabled():
            # Non-reentrant: works with autocast, keyword-free calls and DDP; dropout replays the
            # same mask (the RNG state is restored for the recomputation).
            out: Tensor = checkpoint(self.body, x, cond, use_reentrant=False)
            return out
        return self.body(x, cond)

    def body(self, x: Tensor, cond: Tensor | None) -> Tensor:
        raise NotImplementedError


def set_activation_checkpointing(model: nn.Module, enabled: bool) -> int:
    """Turn activation checkpointing on/off in every transformer and residual block of `model`;
    returns how many blocks it set."""
    blocks = [module for module in model.modules() if isinstance(module, Checkpointed)]
    for block in blocks:
        block.checkpointing = enabled
    return len(blocks)
