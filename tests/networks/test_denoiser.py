"""Denoiser conversions, bf16 autocast, the registry, and end-to-end gradient flow."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from unified_latents.diffusion.process import diffuse, v_from_x_eps
from unified_latents.networks.denoiser import Denoiser, Parameterization
from unified_latents.networks.encoder import EncoderConfig
from unified_latents.networks.registry import build_decoder, build_encoder, build_prior
from unified_latents.networks.uvit import UViTConfig
from unified_latents.networks.vit import ViTConfig

ENCODER = EncoderConfig(channels=(8, 16), blocks_per_stage=1, latent_channels=3)
DECODER = UViTConfig(channels=(8, 16), blocks_per_stage=1, transformer_width=16,
                     transformer_depth=1, heads=2, mlp_ratio=2.0)  # fmt: skip
PRIOR = ViTConfig(width=16, depth=1, heads=2, mlp_ratio=2.0)


class OracleNet(nn.Module):
    """Returns the true target of a parameterisation for known (x, ε)."""

    def __init__(self, x: Tensor, eps: Tensor, parameterization: Parameterization) -> None:
        super().__init__()
        self.x, self.eps, self.parameterization = x, eps, parameterization

    def forward(self, z_t: Tensor, logsnr: Tensor) -> Tensor:
        if self.parameterization == "v":
            return v_from_x_eps(self.x, self.eps, logsnr)
        return self.eps if self.parameterization == "eps" else self.x


@pytest.mark.parametrize("parameterization", ["v", "eps", "x"])
def test_true_target_gives_true_x_and_eps(parameterization: Parameterization) -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(5, 2, 3, 3, generator=generator)
    eps = torch.randn(5, 2, 3, 3, generator=generator)
    logsnr = torch.linspace(-6.0, 6.0, 5)
    denoiser = Denoiser(OracleNet(x, eps, parameterization), parameterization)
    prediction = denoiser(diffuse(x, logsnr, eps), logsnr)
    torch.testing.assert_close(prediction.x_hat, x, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(prediction.eps_hat, eps, atol=1e-4, rtol=1e-4)


def test_unknown_parameterization_is_an_error() -> None:
    with pytest.raises(ValueError, match="choose one of v, eps, x"):
        Denoiser(nn.Identity(), "score")  # type: ignore[arg-type]


def build_autoencoder() -> tuple[nn.Module, Denoiser, Denoiser]:
    torch.manual_seed(0)
    encoder = build_encoder("conv", ENCODER, image_channels=1)
    prior = build_prior("vit", PRIOR, channels=3, size=4)
    decoder = build_decoder("uvit", DECODER, image_channels=1, image_size=8, latent_channels=3,
                            latent_size=4)  # fmt: skip
    return encoder, Denoiser(prior), Denoiser(decoder)


def test_autocast_bf16_returns_fp32_predictions() -> None:
    encoder, prior, decoder = build_autoencoder()
    x, logsnr = torch.randn(2, 1, 8, 8), torch.tensor([-3.0, 3.0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = encoder(x)
        predictions = [prior(z, logsnr), decoder(x, logsnr, z)]
    for prediction in predictions:
        assert prediction.x_hat.dtype == prediction.eps_hat.dtype == torch.float32
        assert torch.isfinite(prediction.x_hat).all() and torch.isfinite(prediction.eps_hat).all()


def test_gradients_reach_every_encoder_prior_and_decoder_parameter() -> None:
    encoder, prior, decoder = build_autoencoder()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # leave zero init, so no gradient is blocked by a zero layer
        for parameter in [*encoder.parameters(), *prior.parameters(), *decoder.parameters()]:
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
    x, logsnr = torch.randn(2, 1, 8, 8, generator=generator), torch.tensor([-1.0, 2.0])
    z = encoder(x)
    eps = torch.randn(x.shape, generator=generator)
    loss = (decoder(diffuse(x, logsnr, eps), logsnr, z).eps_hat - eps).square().sum()
    loss = loss + (prior(z, logsnr).eps_hat - z).square().sum()
    loss.backward()
    for name, module in (("encoder", encoder), ("prior", prior), ("decoder", decoder)):
        for parameter_name, parameter in module.named_parameters():
            assert parameter.grad is not None, f"{name}.{parameter_name} has no gradient"
            assert parameter.grad.abs().sum() > 0, f"{name}.{parameter_name} gradient is 0"


def test_registry_names_the_valid_choices() -> None:
    with pytest.raises(ValueError, match="choose one of: vit"):
        build_prior("unet", PRIOR, channels=3, size=4)
    with pytest.raises(ValueError, match="choose one of: uvit"):
        build_decoder("vit", DECODER, image_channels=1, image_size=8, latent_channels=3,
                      latent_size=4)  # fmt: skip
    with pytest.raises(ValueError, match="choose one of: conv"):
        build_encoder("resnet", ENCODER, image_channels=1)
