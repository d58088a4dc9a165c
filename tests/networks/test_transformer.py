"""Transformer pieces: attention against its definition and the fused kernel, blocks that start as
the identity, the named MLP activations, tokens ↔ images."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.networks.test_layers import perturb_
from unified_latents.networks.transformer import (
    Attention,
    TransformerBlock,
    explicit_attention,
    from_tokens,
    mlp_activation,
    to_tokens,
)


def test_attention_matches_softmax_attention() -> None:
    torch.manual_seed(0)
    attention = Attention(8, heads=2)
    x = torch.randn(2, 5, 8)
    q, k, v = attention.qkv(x).reshape(2, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
    weights = torch.softmax(q @ k.transpose(-1, -2) / 2.0, dim=-1)  # 1/sqrt(head dim 4)
    expected = attention.out((weights @ v).transpose(1, 2).reshape(2, 5, 8))
    torch.testing.assert_close(attention(x), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_explicit_attention_matches_sdpa_values_and_gradients(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    # Strided views into one projection, as Attention passes them.
    qkv = torch.randn(3, 5, 7, 2, 8).permute(0, 1, 3, 2, 4).to(dtype).requires_grad_()
    grad = torch.randn(3, 5, 2, 7, 8)
    outputs, grads = [], []
    for attend in (explicit_attention, F.scaled_dot_product_attention):
        qkv.grad = None
        out = attend(*qkv.unbind(0))
        (out.float() * grad).sum().backward()
        assert qkv.grad is not None and out.dtype == dtype
        outputs.append(out.float())
        grads.append(qkv.grad.float())
    atol, rtol = (1e-5, 1e-5) if dtype == torch.float32 else (2e-2, 0.0)
    torch.testing.assert_close(outputs[0], outputs[1], atol=atol, rtol=rtol)
    torch.testing.assert_close(grads[0], grads[1], atol=atol, rtol=rtol)


def test_attention_training_under_bf16_autocast_matches_the_fused_kernel() -> None:
    torch.manual_seed(0)
    attention = Attention(16, heads=2)
    x = torch.randn(3, 6, 16, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        trained = attention(x)  # grad enabled on CPU in bf16: the explicit path
        with torch.no_grad():
            fused = attention(x)  # the fused SDPA kernel
    assert trained.dtype == fused.dtype == torch.bfloat16
    torch.testing.assert_close(trained.float(), fused.float(), atol=2e-2, rtol=0)
    trained.float().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_transformer_block_is_identity_at_init_and_conditioned_after() -> None:
    torch.manual_seed(0)
    block = TransformerBlock(8, heads=2, cond_dim=6, mlp_ratio=2.0)
    x, cond = torch.randn(2, 5, 8), torch.randn(2, 6)
    torch.testing.assert_close(block(x, cond), x)
    perturb_(block)
    assert not torch.allclose(block(x, cond), x)
    assert not torch.allclose(block(x, cond), block(x, cond.flip(0)))


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh")),
        ("gelu", lambda x: 0.5 * x * (1 + torch.erf(x / 2**0.5))),
        ("silu", lambda x: x * torch.sigmoid(x)),
    ],
)
def test_mlp_activation_is_the_named_function(name: str, reference: object) -> None:
    x = torch.linspace(-4, 4, 101)
    torch.testing.assert_close(mlp_activation(name)(x), reference(x))  # type: ignore[arg-type, operator]
    block = TransformerBlock(8, heads=2, cond_dim=6, activation=name)  # type: ignore[arg-type]
    torch.testing.assert_close(block.mlp[1](x), reference(x))  # type: ignore[operator]


def test_mlp_activations_differ_and_unknown_names_are_errors() -> None:
    x = torch.linspace(-4, 4, 101)
    assert not torch.allclose(mlp_activation("gelu")(x), mlp_activation("gelu_tanh")(x), atol=1e-5)
    with pytest.raises(ValueError, match="relu"):
        mlp_activation("relu")  # type: ignore[arg-type]


def test_token_round_trip() -> None:
    x = torch.randn(2, 4, 8, 8)
    for patch in (1, 2, 4):
        tokens = to_tokens(x, patch)  # [B, N, C·p²]
        assert tokens.shape == (2, (8 // patch) ** 2, 4 * patch**2)
        torch.testing.assert_close(from_tokens(tokens, 8, 8, patch), x)


def test_transformer_block_runs_under_bf16_autocast() -> None:
    torch.manual_seed(0)
    block = TransformerBlock(8, 2, 6)
    perturb_(block)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tokens = block(torch.randn(2, 5, 8), torch.randn(2, 6))
    assert torch.isfinite(tokens).all()
