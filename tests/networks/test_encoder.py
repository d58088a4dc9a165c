"""The deterministic encoder: shapes, downsampling factor, input checks, no squashing."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from unified_latents.networks.encoder import ConvEncoder, EncoderConfig

TINY = EncoderConfig(channels=(8, 16), blocks_per_stage=1, latent_channels=3)


@pytest.mark.parametrize(
    ("channels", "patch_size", "factor"), [((8,), 1, 1), ((8, 16), 1, 2), ((8, 16, 16), 2, 8)]
)
def test_output_shape_and_downsample_factor(
    channels: tuple[int, ...], patch_size: int, factor: int
) -> None:
    config = dataclasses.replace(TINY, channels=channels, patch_size=patch_size)
    encoder = ConvEncoder(config, image_channels=2)
    assert encoder.downsample_factor == config.downsample_factor == factor
    z = encoder(torch.randn(2, 2, 16, 16))
    assert z.shape == (2, 3, 16 // factor, 16 // factor)


def test_indivisible_input_is_a_clear_error() -> None:
    encoder = ConvEncoder(dataclasses.replace(TINY, patch_size=2), image_channels=1)
    with pytest.raises(ValueError, match="not divisible by its downsampling factor 4"):
        encoder(torch.randn(1, 1, 12, 10))


def test_deterministic_and_unsquashed() -> None:
    torch.manual_seed(0)
    encoder = ConvEncoder(TINY, image_channels=1).eval()
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(encoder(x), encoder(x))
    with torch.no_grad():
        encoder.conv_out.weight.mul_(1000.0)
    assert encoder(x).abs().max() > 1.0  # no tanh or rescaling bounds the latent (spec §4)


@pytest.mark.parametrize(
    ("field", "value"),
    [("channels", ()), ("blocks_per_stage", 0), ("latent_channels", 0), ("patch_size", 0),
     ("dropout", 1.0)],
)  # fmt: skip
def test_config_validation(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        EncoderConfig(**{field: value})  # type: ignore[arg-type]
