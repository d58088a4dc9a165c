"""Two transformer operations with hand-written backward passes that touch memory less often than
the ones autograd derives. Same values and gradients (tests/networks/test_fused.py compares both
with the plain ops in float64); in eager mode on CPU, where each pass over a [B, N, D] activation
costs about as much as a small matmul, they save five such passes per transformer block.
torch.compile traces through them like any other autograd.Function.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor


class _AddCMul(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor, c: Tensor) -> Tensor:
        ctx.save_for_backward(b, c)
        ctx.a_shape = a.shape
        return torch.addcmul(a, b, c)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        b, c = ctx.saved_tensors
        need_a, need_b, need_c = ctx.needs_input_grad
        grad_a = grad.sum_to_size(ctx.a_shape) if need_a else None
        grad_b = (grad * c).sum_to_size(b.shape) if need_b else None
        grad_c = (grad * b).sum_to_size(c.shape) if need_c else None
        return grad_a, grad_b, grad_c


def addcmul(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """a + b·c, broadcasting, as one `torch.addcmul` pass. Its backward leaves out the extra
    multiplication by addcmul's `value` (= 1 here) that PyTorch's own backward spends on a full
    [B, N, D] operand: one pass less per call."""
    return cast(Tensor, _AddCMul.apply(a, b, c))


class _SplitHeads(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, qkv: Tensor, heads: int) -> tuple[Tensor, Tensor, Tensor]:
        batch, tokens, width = qkv.shape
        per_head = qkv.reshape(batch, tokens, 3, heads, width // (3 * heads))
        ctx.shape, ctx.dtype = per_head.shape, qkv.dtype
        q, k, v = per_head.permute(2, 0, 3, 1, 4).unbind(0)  # views
        return q, k, v

    @staticmethod
    def backward(ctx: Any, *grads: Tensor | None) -> tuple[Tensor, None]:
        device = next(g for g in grads if g is not None).device
        grad = torch.empty(ctx.shape, dtype=ctx.dtype, device=device)  # [B, N, 3, heads, d]
        for index, part in enumerate(grads):  # [B, heads, N, d] each, into grad[:, :, index]
            target = grad[:, :, index]
            if part is None:
                target.zero_()
            else:
                target.copy_(part.transpose(1, 2))
        return grad.flatten(2), None


def split_heads(qkv: Tensor, heads: int) -> tuple[Tensor, Tensor, Tensor]:
    """[B, N, 3·D] (q, k, v side by side, each head-major) → q, k, v as [B, heads, N, D/heads]
    views. Its backward writes the three gradients straight into one [B, N, 3·D] tensor; the
    autograd of permute + unbind stacks them first and then copies the stack into that layout."""
    return cast(tuple[Tensor, Tensor, Tensor], _SplitHeads.apply(qkv, heads))
