"""Network options the paper's architectures need (UL-SPEC §11): the encoder's deeper last
stage, the UViT's extra downsampling before its transformer, the multi-level base ViT, dropout and
activation checkpointing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.networks.test_vit import perturb_
from unified_latents.networks.checkpointing import set_activation_checkpointing
from unified_latents.networks.encoder import ConvEncoder, EncoderConfig
from unified_latents.networks.layers import ResBlock
from unified_latents.networks.transformer import TransformerBlock
from unified_latents.networks.uvit import UViTConfig, UViTDecoder
from unified_latents.networks.vit import LatentViT, ViTConfig

TWO_LEVEL = ViTConfig(
    width=16, depth=3, heads=2, mlp_ratio=2.0, inner_widths=(32,), inner_depths=(2,)
)


def test_encoder_last_stage_blocks() -> None:
    config = EncoderConfig(channels=(8, 16), blocks_per_stage=2, last_stage_blocks=3)
    encoder = ConvEncoder(config, image_channels=3)
    blocks = [m for m in encoder.stages if isinstance(m, ResBlock)]
    assert len(blocks) == 2 + 3
    assert [config.stage_blocks(i) for i in range(2)] == [2, 3]
    # 0 (the default) keeps the old layout: blocks_per_stage everywhere
    assert EncoderConfig(channels=(8, 16), blocks_per_stage=2).stage_blocks(1) == 2
    with pytest.raises(ValueError, match="last_stage_blocks"):
        EncoderConfig(last_stage_blocks=-1)


def test_uvit_transformer_downsample_runs_the_transformer_on_a_coarser_grid() -> None:
    config = UViTConfig(
        channels=(8, 16), blocks_per_stage=1, transformer_width=16, transformer_depth=1, heads=2,
        patch_size=2, transformer_downsample=True,
    )  # fmt: skip
    assert config.downsample_factor == 8
    torch.manual_seed(0)
    decoder = UViTDecoder(config, 3, 32, latent_channels=4, latent_size=4)
    assert decoder.position.shape[1] == 4 * 4  # 32 / 8 = 4: the latent's grid
    perturb_(decoder)
    x, z = torch.randn(2, 3, 32, 32), torch.randn(2, 4, 4, 4)
    out = decoder(x, torch.zeros(2), z)
    assert out.shape == x.shape
    assert not torch.allclose(out, decoder(x, torch.zeros(2), torch.randn(2, 4, 4, 4)))
    with pytest.raises(ValueError, match="divisible"):
        UViTDecoder(config, 3, 36, latent_channels=4, latent_size=4)


def test_two_level_vit_shapes_layout_and_zero_init() -> None:
    torch.manual_seed(0)
    vit = LatentViT(TWO_LEVEL, channels=3, size=8)
    assert len(vit.blocks) == 1 and len(vit.up_blocks) == 1 and len(vit.up_blocks[0]) == 2
    assert vit.inner_blocks is not None and len(vit.inner_blocks) == 2
    assert vit.inner_blocks[0].attention.heads == 4  # head width 8 kept at width 32
    z = torch.randn(2, 3, 8, 8)
    assert torch.equal(vit(z, torch.zeros(2)), torch.zeros_like(z))
    perturb_(vit)
    out = vit(z, torch.zeros(2))
    assert out.shape == z.shape and out.abs().sum() > 0


def test_two_level_vit_uses_its_inner_level() -> None:
    """A token's output depends on every token (attention), and the skip/merge path is used:
    perturbing the innermost blocks changes the output."""
    torch.manual_seed(0)
    vit = LatentViT(TWO_LEVEL, channels=3, size=8)
    perturb_(vit)
    z, logsnr = torch.randn(1, 3, 8, 8), torch.zeros(1)
    before = vit(z, logsnr)
    assert vit.inner_blocks is not None
    with torch.no_grad():
        vit.inner_blocks[-1].mlp[-1].weight.add_(1.0)
    assert not torch.allclose(before, vit(z, logsnr))


def test_three_levels_and_bad_multilevel_configs() -> None:
    config = ViTConfig(width=8, depth=2, heads=2, inner_widths=(16, 32), inner_depths=(2, 1))
    vit = LatentViT(config, channels=2, size=8)
    assert vit(torch.randn(1, 2, 8, 8), torch.zeros(1)).shape == (1, 2, 8, 8)
    with pytest.raises(ValueError, match="divisible"):
        LatentViT(config, channels=2, size=6)
    with pytest.raises(ValueError, match="one entry per inner level"):
        ViTConfig(inner_widths=(32,))
    with pytest.raises(ValueError, match="head width"):
        ViTConfig(width=16, heads=2, inner_widths=(20,), inner_depths=(1,))
    with pytest.raises(ValueError, match="depth ≥ 2"):
        ViTConfig(depth=1, inner_widths=(256,), inner_depths=(1,))


def test_single_level_vit_keeps_its_parameter_names() -> None:
    """Checkpoints of single-level ViTs saved before the multi-level option still load."""
    names = set(LatentViT(ViTConfig(width=16, depth=2, heads=2), 3, 4).state_dict())
    assert {"blocks.1.modulation.weight", "patch_in.weight", "position"} <= names
    assert not any(name.startswith(("up_blocks", "merges", "inner")) for name in names)


def test_dropout_is_active_only_in_training() -> None:
    config = ViTConfig(width=16, depth=2, heads=2, dropout=0.5)
    torch.manual_seed(0)
    vit = LatentViT(config, channels=3, size=4)
    perturb_(vit)
    z, logsnr = torch.randn(2, 3, 4, 4), torch.zeros(2)
    vit.eval()
    assert torch.equal(vit(z, logsnr), vit(z, logsnr))
    vit.train()
    assert not torch.equal(vit(z, logsnr), vit(z, logsnr))


@pytest.mark.parametrize("network", ["vit", "uvit"])
def test_activation_checkpointing_gives_the_same_gradients(network: str) -> None:
    torch.manual_seed(0)
    model: nn.Module
    if network == "vit":
        model = LatentViT(TWO_LEVEL, channels=3, size=8)
        args: tuple[torch.Tensor, ...] = (torch.randn(2, 3, 8, 8), torch.zeros(2))
    else:
        config = UViTConfig(channels=(8, 16), blocks_per_stage=1, transformer_width=16,
                            transformer_depth=1, heads=2)  # fmt: skip
        model = UViTDecoder(config, 1, 8, latent_channels=2, latent_size=4)
        args = (torch.randn(2, 1, 8, 8), torch.zeros(2), torch.randn(2, 2, 4, 4))
    perturb_(model)

    def gradients() -> list[torch.Tensor]:
        model.zero_grad()
        model(*args).square().sum().backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    plain = gradients()
    wrapped = set_activation_checkpointing(model, True)
    assert wrapped == sum(isinstance(m, TransformerBlock | ResBlock) for m in model.modules())
    checkpointed = gradients()
    assert len(plain) == len(checkpointed)
    for a, b in zip(plain, checkpointed, strict=True):
        torch.testing.assert_close(a, b)
    set_activation_checkpointing(model, False)
    assert not any(getattr(m, "checkpointing", False) for m in model.modules())
