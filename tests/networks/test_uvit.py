"""The UViT decoder: shapes, zero output at init, dependence on λ and z, the z_logsnr default."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from unified_latents.networks.uvit import UViTConfig, UViTDecoder

TINY = UViTConfig(
    channels=(8, 16), blocks_per_stage=1, transformer_width=16, transformer_depth=1, heads=2,
    mlp_ratio=2.0,
)  # fmt: skip


def perturb_(module: nn.Module, seed: int = 0, scale: float = 0.1) -> None:
    """Add noise to every parameter, so zero-initialised layers stop hiding their inputs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator))


def tiny_decoder(latent_size: int = 4, perturbed: bool = True, **changes: object) -> UViTDecoder:
    torch.manual_seed(0)
    config = dataclasses.replace(TINY, **changes)  # type: ignore[arg-type]
    decoder = UViTDecoder(config, image_channels=2, image_size=8, latent_channels=3,
                          latent_size=latent_size)  # fmt: skip
    if perturbed:
        perturb_(decoder)
    return decoder


def inputs(batch: int = 2, latent_size: int = 4) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(1)
    x_t = torch.randn(batch, 2, 8, 8, generator=generator)
    z = torch.randn(batch, 3, latent_size, latent_size, generator=generator)
    return x_t, torch.linspace(-4.0, 4.0, batch), z


@pytest.mark.parametrize("injection", ["add", "concat", "both"])
@pytest.mark.parametrize(("latent_size", "patch_size"), [(4, 1), (2, 1), (4, 2), (8, 1)])
def test_shape_and_exactly_zero_at_init(injection: str, latent_size: int, patch_size: int) -> None:
    decoder = tiny_decoder(latent_size, perturbed=False, latent_injection=injection,
                           patch_size=patch_size)  # fmt: skip
    out = decoder(*inputs(latent_size=latent_size))
    assert out.shape == (2, 2, 8, 8)
    assert torch.equal(out, torch.zeros_like(out))  # zero-init output conv


@pytest.mark.parametrize("injection", ["add", "concat", "both"])
@pytest.mark.parametrize("latent_size", [4, 2])
def test_output_depends_on_z(injection: str, latent_size: int) -> None:
    decoder = tiny_decoder(latent_size, latent_injection=injection)
    x_t, logsnr, z = inputs(latent_size=latent_size)
    assert not torch.allclose(decoder(x_t, logsnr, z), decoder(x_t, logsnr, z + 1.0))


def test_add_injection_reaches_the_matching_stage_and_the_transformer() -> None:
    decoder = tiny_decoder(latent_size=8, latent_injection="add")
    assert set(decoder.latent_to_stage) == {"0"}  # stage 0 runs at 8×8
    assert decoder.latent_to_tokens is not None
    assert tiny_decoder(latent_injection="concat").latent_to_tokens is None


def test_output_depends_on_logsnr() -> None:
    decoder = tiny_decoder()
    x_t, _, z = inputs()
    out = decoder(x_t, torch.tensor([-2.0, -2.0]), z)
    assert not torch.allclose(out, decoder(x_t, torch.tensor([2.0, 2.0]), z))


def test_default_z_logsnr_equals_explicit_logsnr_0() -> None:
    decoder = tiny_decoder()
    x_t, logsnr, z = inputs()
    default = decoder(x_t, logsnr, z)
    explicit = decoder(x_t, logsnr, z, torch.full((2,), decoder.default_z_logsnr))
    assert torch.equal(default, explicit)
    other = decoder(x_t, logsnr, z, torch.full((2,), -3.0))
    assert not torch.allclose(default, other)


def test_shape_errors_are_clear() -> None:
    decoder = tiny_decoder()
    x_t, logsnr, z = inputs()
    with pytest.raises(ValueError, match="expects"):
        decoder(x_t, logsnr, z[:, :2])
    with pytest.raises(ValueError, match="not divisible"):
        UViTDecoder(TINY, image_channels=1, image_size=9, latent_channels=3, latent_size=4)


@pytest.mark.parametrize(
    ("field", "value"),
    [("channels", ()), ("heads", 3), ("transformer_depth", -1), ("latent_injection", "mul"),
     ("dropout", -0.1), ("mlp_activation", "relu")],
)  # fmt: skip
def test_config_validation(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        UViTConfig(**{field: value})  # type: ignore[arg-type]
