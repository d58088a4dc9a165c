"""The §10 baselines and ablations: finite, correctly signed terms that combine as documented; the
registry matches the config's kinds; the N(0, I) rate against Monte Carlo; no prior gradient
reaches a stop-grad encoder; the MSE decoder's weight is what a diffusion decoder ignoring x_t
pays; the KL-VAE latent scale round-trips and on clips is the image model per frame; pixel space
is the identity."""

from __future__ import annotations

import math
from dataclasses import fields, replace
from typing import get_args

import pytest
import torch
from torch import Tensor, nn

from tests.helpers import digit_images
from tests.objectives.test_unified_latents import TINY
from unified_latents.config import ConfigError
from unified_latents.diffusion.process import alpha_sigma
from unified_latents.networks.denoiser import Denoiser
from unified_latents.networks.video import VideoConfig
from unified_latents.objectives.autoencoder import Autoencoder, AutoencoderKind, ObjectiveConfig
from unified_latents.objectives.baselines import mse_decoder_weight, normal_prior_kl
from unified_latents.objectives.kl_vae import FrameKLAutoencoder, KLAutoencoder
from unified_latents.objectives.pixel_space import PixelSpace
from unified_latents.objectives.registry import AUTOENCODER_KINDS, build_stage1_model
from unified_latents.objectives.unified_latents import UnifiedLatents

KINDS: tuple[str, ...] = get_args(AutoencoderKind)


def build(kind: str, **objective: float | str) -> Autoencoder:
    torch.manual_seed(0)
    config = ObjectiveConfig(kind=kind, **objective)  # type: ignore[arg-type]
    model = build_stage1_model(TINY, config, image_channels=1, image_size=8)
    for parameter in model.parameters():  # leave the zero-init start so every path is live
        parameter.data.add_(0.05 * torch.randn_like(parameter))
    return model


def test_registry_covers_exactly_the_configurable_kinds() -> None:
    assert set(AUTOENCODER_KINDS) == set(KINDS)
    with pytest.raises(ValueError, match=r"objective\.kind"):
        ObjectiveConfig(kind="vq-gan")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", KINDS)
def test_terms_are_finite_nonnegative_and_combine(kind: str) -> None:
    model = build(kind, kl_weight=0.5)
    terms = model(digit_images(), torch.Generator().manual_seed(0), rate_weight=0.25)
    named = {field.name: getattr(terms, field.name) for field in fields(terms)}
    for name, value in named.items():
        assert value.shape == (6,) and torch.isfinite(value).all(), name
        assert (value >= 0).all(), name  # nats, squared/absolute errors: never negative
    if kind == "kl-vae":
        expected = named["reconstruction_error"] + 0.25 * 0.5 * named["kl_nats"]
        assert "rate_nats" not in named  # a KL to N(0, I) is not a bound under a learned prior
    else:
        regularizer = named["rate_nats"] + 0.5 * named.get("encoder_kl_nats", 0.0)
        expected = 0.25 * regularizer + TINY.loss_factor * named["distortion_nats"]
        torch.testing.assert_close(
            named["rate_nats"], named["prior_diffusion_nats"] + named["prior_terminal_nats"]
        )
    torch.testing.assert_close(named["loss"], expected)
    assert model.encode(digit_images()).shape == (6, *model.latent_shape)


def test_normal_prior_rate_is_the_exact_kl_monte_carlo() -> None:
    model = build("ul-normal-prior")
    z_clean = model.encode(digit_images(2)).detach()  # [2, 2, 4, 4]
    diffusion, kl = model.rate(z_clean, None)
    assert (diffusion == 0).all() and torch.allclose(kl, normal_prior_kl(z_clean, 5.0))
    # KL(q ‖ p) = E_q[log q(z_0|x) − log N(z_0; 0, I)], z_0 = α_0 z_clean + σ_0 ε
    alpha, sigma = alpha_sigma(torch.tensor(TINY.logsnr_0))
    eps = torch.randn(200_000, *z_clean.shape, generator=torch.Generator().manual_seed(0))
    z_0 = alpha * z_clean + sigma * eps
    log_q = -0.5 * eps**2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
    log_p = -0.5 * z_0**2 - 0.5 * math.log(2 * math.pi)
    monte_carlo = (log_q - log_p).flatten(2).sum(2).mean(0)  # [2]
    torch.testing.assert_close(monte_carlo, kl, rtol=0.02, atol=0.3)


def test_stop_grad_prior_sends_no_prior_gradient_to_the_encoder() -> None:
    model = build("ul-stopgrad-prior")
    terms = model(digit_images(), torch.Generator().manual_seed(0))
    terms.rate_nats.sum().backward()  # the prior's ELBO alone
    encoder = list(model.encoder.parameters())
    assert all(p.grad is None for p in encoder)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.prior.parameters())
    terms = model(digit_images(), torch.Generator().manual_seed(0))
    terms.encoder_kl_nats.sum().backward()  # the discounted KL does reach it
    assert all(p.grad is not None for p in encoder) and encoder[-1].grad.abs().sum() > 0
    # plain UL: the same prior term does reach the encoder (the ablation's only difference)
    ul = build("ul")
    ul(digit_images(), torch.Generator().manual_seed(0)).rate_nats.sum().backward()
    assert next(iter(ul.encoder.parameters())).grad is not None


def test_mse_decoder_weight_integrates_the_sigmoid_weighting() -> None:
    for bias in (-2.0, 0.0, 3.0):
        logsnr = torch.linspace(-15.0, 15.0, 200_001, dtype=torch.float64)
        integrand = torch.sigmoid(bias - logsnr) * torch.exp(logsnr)
        quadrature = torch.trapezoid(integrand, logsnr).item()
        assert mse_decoder_weight(-15.0, 15.0, bias) == pytest.approx(quadrature, rel=1e-6)


class ConstantImage(nn.Module):
    """A decoder network that ignores x_t (and z): it always predicts the image `x_hat`."""

    def __init__(self, x_hat: Tensor) -> None:
        super().__init__()
        self.x_hat = x_hat

    def forward(self, x_t: Tensor, logsnr: Tensor, *args: object) -> Tensor:
        return self.x_hat.expand_as(x_t)


def test_mse_distortion_equals_the_diffusion_loss_of_a_decoder_ignoring_x_t() -> None:
    """c_lf keeps its meaning: ½ W Σ(x − x̂)² is E[UL decoder loss] when x̂ does not use x_t."""
    model = build("ul-mse-decoder")
    x, z_0 = digit_images(1), model.encode(digit_images(1)).detach()
    x_hat = model.decoder(z_0).detach()
    mse = model.distortion(x, z_0, None)
    ul = UnifiedLatents(replace(TINY, parameterization="x"), image_channels=1, image_size=8)
    ul.decoder = Denoiser(ConstantImage(x_hat), "x")
    batch = 50_000
    diffusion = ul.distortion(
        x.expand(batch, -1, -1, -1), z_0.expand(batch, -1, -1, -1), torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(diffusion.mean(), mse[0], rtol=0.02, atol=0.0)


def test_kl_vae_latent_scale_round_trip() -> None:
    model = build("kl-vae")
    assert isinstance(model, KLAutoencoder)
    batches = [digit_images(8) * scale for scale in (1.0, 0.5, 2.0)]
    model.train()
    for x in batches:  # fewer than 1/momentum batches: exact pooled moments
        model(x, torch.Generator().manual_seed(0))
    model.eval()
    means = torch.cat([model.posterior(x)[0] for x in batches])
    pooled_std = (means.pow(2).mean() - means.mean() ** 2).sqrt()
    torch.testing.assert_close(model.latent_scale, 1 / pooled_std)
    x = batches[0]
    z = model.encode(x)  # the scaled posterior mean: what `ul encode` caches
    mean, _ = model.posterior(x)
    torch.testing.assert_close(z, mean * model.latent_scale)
    torch.testing.assert_close(model.decode(z), model.decoder(mean))  # unscaled again
    torch.testing.assert_close(model.reconstruct(x, num_steps=1), model.decoder(mean))
    state = model.state_dict()  # the scale is part of every checkpoint
    assert {"latent_mean", "latent_second_moment", "latent_batches"} <= set(state)
    with pytest.raises(NotImplementedError, match="no prior"):
        model.rate(z, None)


def test_kl_vae_l1_or_l2_reconstruction() -> None:
    x, generator = digit_images(), torch.Generator
    l1 = build("kl-vae", reconstruction_loss="l1")(x, generator().manual_seed(0))
    l2 = build("kl-vae", reconstruction_loss="l2")(x, generator().manual_seed(0))
    torch.testing.assert_close(l1.kl_nats, l2.kl_nats)  # same weights, same noise
    assert not torch.allclose(l1.reconstruction_error, l2.reconstruction_error)


def test_pixel_space_is_the_identity() -> None:
    pixels = PixelSpace(image_channels=1, image_size=8, logsnr_max=12.0)
    x = digit_images()
    assert pixels.latent_shape == (1, 8, 8) and pixels.latent_logsnr_max == 12.0
    assert torch.equal(pixels.decode(pixels.encode(x), num_steps=4), x)
    assert not pixels.has_latent_prior and build("ul-normal-prior").has_latent_prior


@pytest.mark.parametrize("kind", KINDS)
def test_an_image_size_the_encoder_cannot_divide_is_a_config_error(kind: str) -> None:
    """One message for every stage-1 kind (the CLI prints a ConfigError as one line)."""
    with pytest.raises(ConfigError, match="not divisible by the encoder's downsampling"):
        build_stage1_model(TINY, ObjectiveConfig(kind=kind), image_channels=1, image_size=9)  # type: ignore[arg-type]


def test_the_video_kl_vae_is_the_image_one_on_every_frame() -> None:
    """Clips [B, C, T, H, W]: per-frame latents, and the loss of a clip is the sum of its
    frames' losses under the image model with the same weights (same noise per frame)."""
    image = build("kl-vae")
    video = build_stage1_model(TINY, ObjectiveConfig(kind="kl-vae"), 1, 8, num_frames=3)
    assert isinstance(video, FrameKLAutoencoder)
    video.load_state_dict(image.state_dict())
    assert video.image_shape == (1, 3, 8, 8)
    assert video.latent_shape == (image.latent_channels, 3, *image.latent_shape[1:])
    frames = digit_images(6).reshape(2, 3, 1, 8, 8)  # 2 clips of 3 frames
    clips = frames.transpose(1, 2)  # [2, 1, 3, 8, 8]
    image.eval()
    video.eval()
    z = video.encode(clips)
    assert z.shape == (2, *video.latent_shape)
    for t in range(3):
        torch.testing.assert_close(z[:, :, t], image.encode(clips[:, :, t]))
    decoded = video.decode(z, num_steps=1)
    torch.testing.assert_close(decoded[:, :, 1], image.decode(z[:, :, 1], num_steps=1))
    # The KL term has no noise in it, so it compares exactly
    terms = video(clips, torch.Generator().manual_seed(0))
    per_frame = sum(image(clips[:, :, t], torch.Generator()).kl_nats for t in range(3))
    torch.testing.assert_close(terms.kl_nats, per_frame)
    assert terms.loss.shape == (2,) and bool(torch.isfinite(terms.loss).all())


def test_the_video_kl_vae_has_no_temporal_downsampling() -> None:
    config = replace(TINY, video=VideoConfig(temporal_downsample=2))
    with pytest.raises(ConfigError, match="temporal_downsample=1"):
        build_stage1_model(config, ObjectiveConfig(kind="kl-vae"), 1, 8, num_frames=4)
    with pytest.raises(ConfigError, match="UL or kl-vae"):
        build_stage1_model(TINY, ObjectiveConfig(kind="ul-mse-decoder"), 1, 8, num_frames=4)
