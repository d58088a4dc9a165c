"""FLOP counts against hand counts (2 FLOPs per multiply-accumulate; bias and activations free)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unified_latents.metrics.flops import (
    forward_flops,
    forward_flops_per_example,
    per_example,
    training_flops_per_example,
)


class Attention(nn.Module):
    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(query, key, value)


def test_linear_is_two_batch_in_out() -> None:
    batch, d_in, d_out = 5, 7, 3
    assert (
        forward_flops(nn.Linear(d_in, d_out), torch.randn(batch, d_in)) == 2 * batch * d_in * d_out
    )


def test_conv2d_is_two_batch_cout_hout_wout_cin_k_k() -> None:
    batch, c_in, c_out, kernel, size = 2, 3, 4, 3, 10
    conv = nn.Conv2d(c_in, c_out, kernel, stride=2, padding=1)
    out_size = (size + 2 * 1 - kernel) // 2 + 1  # 5
    expected = 2 * batch * c_out * out_size * out_size * c_in * kernel * kernel
    assert forward_flops(conv, torch.randn(batch, c_in, size, size)) == expected


@pytest.mark.parametrize(
    ("batch", "heads", "length_q", "length_k", "dim_qk", "dim_v"),
    [
        (2, 3, 5, 7, 4, 6),  # small: CPU runs the unfused math path (two bmm calls)
        (2, 4, 256, 128, 64, 64),  # CPU fused flash kernel, absent from PyTorch's own table
    ],
)
def test_attention_is_two_b_h_l_s_times_e_plus_ev(
    batch: int, heads: int, length_q: int, length_k: int, dim_qk: int, dim_v: int
) -> None:
    query = torch.randn(batch, heads, length_q, dim_qk)
    key = torch.randn(batch, heads, length_k, dim_qk)
    value = torch.randn(batch, heads, length_k, dim_v)
    # QKᵀ: B·H·L·S·E multiply-accumulates; softmax(QKᵀ)·V: B·H·L·S·E_v; ×2 FLOPs each.
    expected = 2 * batch * heads * length_q * length_k * (dim_qk + dim_v)
    assert forward_flops(Attention(), query, key, value) == expected


def test_elementwise_work_is_not_counted() -> None:
    model = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.LayerNorm(16), nn.Linear(16, 2))
    assert forward_flops(model, torch.randn(3, 8)) == 2 * 3 * (8 * 16 + 16 * 2)


def test_per_example_and_training_flops() -> None:
    model, inputs = nn.Linear(6, 4), torch.randn(10, 6)
    total = forward_flops(model, inputs)
    assert per_example(total, 10) == pytest.approx(2 * 6 * 4)
    assert forward_flops_per_example(model, inputs) == pytest.approx(2 * 6 * 4)
    assert training_flops_per_example(model, inputs) == pytest.approx(3 * 2 * 6 * 4)  # spec §10
    with pytest.raises(ValueError):
        per_example(total, 0)


def test_keyword_arguments_reach_the_module() -> None:
    model = nn.Linear(4, 4)
    assert forward_flops(model, input=torch.randn(2, 4)) == 2 * 2 * 4 * 4
