"""FLOP counting for compute-matched comparisons (spec §10: training FLOPs = 3 × forward).

Counts come from `torch.utils.flop_counter.FlopCounterMode`, which records matrix products
(linear layers, `bmm`/`matmul`), convolutions and fused attention, each as 2 FLOPs per
multiply-accumulate. Elementwise work (activations, norms, softmax, bias adds) is not counted,
matching the paper's "linear layers and attention" convention.

One gap is filled here: on CPU, `scaled_dot_product_attention` dispatches to
`aten._scaled_dot_product_flash_attention_for_cpu`, which PyTorch's table does not list, so it
would count as zero. We register the same formula as for the GPU kernels:
2·B·H·L·S·(E + E_v) for queries [..., L, E], keys [..., S, E] and values [..., S, E_v]
(QKᵀ costs B·H·L·S·E multiply-accumulates, the weighted sum of values B·H·L·S·E_v).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def attention_flops(
    query_shape: torch.Size, key_shape: torch.Size, value_shape: torch.Size, *_: Any, **__: Any
) -> int:
    """2·(batch·heads)·L·S·(E + E_v) FLOPs of SDPA on q [..., L, E], k [..., S, E], v [..., S, E_v].

    The leading (batch, head) dims are taken from the query, so grouped-query attention (fewer
    key/value heads, broadcast by the kernel) is counted at the query's head count.
    """
    *leading, length_q, dim_qk = query_shape
    length_k, dim_v = key_shape[-2], value_shape[-1]
    return 2 * math.prod(leading) * length_q * length_k * (dim_qk + dim_v)


def _extra_formulas() -> dict[Any, Any]:
    cpu_attention = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return {} if cpu_attention is None else {cpu_attention: attention_flops}


def forward_flops(module: nn.Module, *example_args: Any, **kwargs: Any) -> int:
    """FLOPs of one `module(*example_args, **kwargs)` call (whole batch), without autograd."""
    counter = FlopCounterMode(display=False, custom_mapping=_extra_formulas())
    with torch.no_grad(), counter:
        module(*example_args, **kwargs)
    return int(counter.get_total_flops())


def per_example(flops: int | float, batch_size: int) -> float:
    """A whole-batch FLOP count divided over the examples in the batch."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    return flops / batch_size


def _batch_size(example_args: tuple[Any, ...]) -> int:
    if not example_args or not isinstance(example_args[0], torch.Tensor):
        raise ValueError("the first example argument must be a batched tensor [B, ...]")
    return int(example_args[0].shape[0])


def forward_flops_per_example(module: nn.Module, *example_args: Any, **kwargs: Any) -> float:
    """Forward FLOPs per example; the batch size is the first dim of the first argument."""
    return per_example(forward_flops(module, *example_args, **kwargs), _batch_size(example_args))


def training_flops_per_example(module: nn.Module, *example_args: Any, **kwargs: Any) -> float:
    """3 × forward FLOPs per example (spec §10): forward, plus backward ≈ twice the forward
    (gradients with respect to both activations and weights)."""
    return 3.0 * forward_flops_per_example(module, *example_args, **kwargs)
