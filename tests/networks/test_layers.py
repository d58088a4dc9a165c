"""Building blocks: shapes, identity at initialisation, conditioning, fp32 under autocast."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unified_latents.networks.layers import (
    AdaptiveGroupNorm,
    Downsample,
    GroupNorm,
    LogSNREmbedding,
    ResBlock,
    Upsample,
    group_count,
    group_norm,
)


def perturb_(module: nn.Module, seed: int = 0, scale: float = 0.1) -> None:
    """Add noise to every parameter, so zero-initialised layers stop hiding their inputs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator))


@pytest.mark.parametrize("channels", [1, 3, 4, 8, 16, 24, 32, 96, 128, 512])
def test_group_count_divides_and_keeps_groups_of_several_channels(channels: int) -> None:
    groups = group_count(channels)
    assert channels % groups == 0 and 1 <= groups <= 32
    assert channels // groups >= min(4, channels)


def test_logsnr_embedding_is_fp32_and_resolves_nearby_logsnr() -> None:
    torch.manual_seed(0)
    embedding = LogSNREmbedding(16)
    logsnr = torch.tensor([-20.0, 3.0, 3.01, 20.0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = embedding(logsnr)  # [4, 16]
    assert out.shape == (4, 16) and out.dtype == torch.float32
    assert not torch.allclose(out[1], out[2])  # bf16 could not tell 3.0 from 3.01


def test_adaptive_group_norm_starts_as_plain_norm_then_uses_cond() -> None:
    torch.manual_seed(0)
    norm = AdaptiveGroupNorm(8, cond_dim=6)
    x, cond = torch.randn(2, 8, 5, 5), torch.randn(2, 6)
    torch.testing.assert_close(norm(x, cond), F.group_norm(x, norm.num_groups, eps=1e-6))
    perturb_(norm)
    assert not torch.allclose(norm(x, cond), norm(x, cond.flip(0)))


@pytest.mark.parametrize("cond_dim", [None, 6])
def test_resblock_shapes_and_starts_as_its_skip_path(cond_dim: int | None) -> None:
    torch.manual_seed(0)
    block = ResBlock(4, 8, cond_dim, dropout=0.1).eval()
    x = torch.randn(2, 4, 6, 6)
    cond = torch.randn(2, 6) if cond_dim else None
    out = block(x, cond)
    assert out.shape == (2, 8, 6, 6)
    torch.testing.assert_close(out, block.skip(x))  # zero-init second conv
    same = ResBlock(8, 8, cond_dim)
    torch.testing.assert_close(same(out, cond), out)


def test_resblock_uses_cond_after_perturbation() -> None:
    torch.manual_seed(0)
    block = ResBlock(4, 4, cond_dim=6)
    perturb_(block)
    x, cond = torch.randn(2, 4, 6, 6), torch.randn(1, 6).expand(2, 6)
    assert not torch.allclose(block(x, cond), block(x, cond + 1.0))


def test_group_norm_keeps_bf16_input_dtype_and_matches_fp32() -> None:
    torch.manual_seed(0)
    norm = GroupNorm(16)
    perturb_(norm)
    x = (3 * torch.randn(2, 16, 5, 5) + 1).bfloat16()
    expected = F.group_norm(x.float(), norm.num_groups, norm.weight, norm.bias, eps=1e-6)
    assert norm(x).dtype == torch.bfloat16
    torch.testing.assert_close(norm(x).float(), expected, atol=0.05, rtol=0.01)
    affine_free = group_norm(x, norm.num_groups)
    assert affine_free.dtype == torch.bfloat16
    expected = F.group_norm(x.float(), norm.num_groups, eps=1e-6)
    torch.testing.assert_close(affine_free.float(), expected, atol=0.05, rtol=0.01)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert norm(x).dtype == torch.bfloat16 and norm(x.float()).dtype == torch.float32


def test_resample_shapes() -> None:
    x = torch.randn(2, 4, 8, 8)
    assert Downsample(4, 6)(x).shape == (2, 6, 4, 4)
    assert Upsample(4)(x).shape == (2, 4, 16, 16)


def test_resblock_runs_under_bf16_autocast() -> None:
    torch.manual_seed(0)
    res = ResBlock(4, 4, 6)
    perturb_(res)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features = res(torch.randn(2, 4, 6, 6), torch.randn(2, 6))
    assert torch.isfinite(features).all()
