"""networks/fused.py: the hand-written backward passes give the values and gradients of the plain
PyTorch operations they replace (float64, broadcast shapes as used in the transformer blocks)."""

from __future__ import annotations

import pytest
import torch

from unified_latents.networks.fused import addcmul, split_heads


def leaves(*shapes: tuple[int, ...]) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [
        torch.randn(shape, generator=generator, dtype=torch.float64).requires_grad_()
        for shape in shapes
    ]


@pytest.mark.parametrize(
    "shapes",
    [
        ((2, 5, 4), (2, 1, 4), (2, 5, 4)),  # gated residual: x + gate·h
        ((2, 1, 4), (2, 5, 4), (2, 1, 4)),  # modulation: shift + LN(x)·(1 + scale)
        ((2, 5, 4), (2, 5, 4), (2, 5, 4)),
    ],
)
def test_addcmul_matches_torch_addcmul_in_value_and_gradient(
    shapes: tuple[tuple[int, ...], ...],
) -> None:
    ours = leaves(*shapes)
    theirs = [t.detach().clone().requires_grad_() for t in ours]
    out, expected = addcmul(*ours), torch.addcmul(*theirs)
    torch.testing.assert_close(out, expected)
    weight = torch.randn(out.shape, dtype=torch.float64)
    (out * weight).sum().backward()
    (expected * weight).sum().backward()
    for mine, reference in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine.grad, reference.grad)
    assert torch.autograd.gradcheck(addcmul, tuple(leaves(*shapes)))


@pytest.mark.parametrize("needs", [(True, False, True), (False, True, False), (True, True, False)])
def test_addcmul_gradients_only_where_asked(needs: tuple[bool, bool, bool]) -> None:
    """Inputs without requires_grad get no gradient (the backward skips them) and the others get
    PyTorch's: the gated residual x + gate·h with a frozen gate, a frozen residual, a frozen h."""
    shapes = ((2, 5, 4), (2, 1, 4), (2, 5, 4))
    ours = [t.requires_grad_(need) for t, need in zip(leaves(*shapes), needs, strict=True)]
    theirs = [t.detach().clone().requires_grad_(need) for t, need in zip(ours, needs, strict=True)]
    weight = torch.randn(shapes[0], dtype=torch.float64)
    (addcmul(*ours) * weight).sum().backward()
    (torch.addcmul(*theirs) * weight).sum().backward()
    for mine, reference, need in zip(ours, theirs, needs, strict=True):
        assert (mine.grad is None) == (not need)
        if need:
            torch.testing.assert_close(mine.grad, reference.grad)


def reference_split(qkv: torch.Tensor, heads: int) -> tuple[torch.Tensor, ...]:
    batch, tokens, width = qkv.shape
    per_head = qkv.reshape(batch, tokens, 3, heads, width // (3 * heads))
    return tuple(per_head.permute(2, 0, 3, 1, 4))


@pytest.mark.parametrize("used", [(0, 1, 2), (0, 2)])  # a q, k or v without gradient is zero
def test_split_heads_matches_permute_and_unbind(used: tuple[int, ...]) -> None:
    (qkv,) = leaves((2, 5, 3 * 8))
    twin = qkv.detach().clone().requires_grad_()
    ours, theirs = split_heads(qkv, 2), reference_split(twin, 2)
    assert [t.shape for t in ours] == [(2, 2, 5, 4)] * 3
    for mine, reference in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine, reference)
    weights = [torch.randn(2, 2, 5, 4, dtype=torch.float64) for _ in range(3)]
    sum((ours[i] * weights[i]).sum() for i in used).backward()  # type: ignore[union-attr]
    sum((theirs[i] * weights[i]).sum() for i in used).backward()  # type: ignore[union-attr]
    torch.testing.assert_close(qkv.grad, twin.grad)
    assert torch.autograd.gradcheck(lambda t: split_heads(t, 2), (qkv.detach().requires_grad_(),))
