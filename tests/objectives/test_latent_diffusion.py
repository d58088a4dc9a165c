"""Stage 2's latent normalisation: z_n = (z − m)/s with the λ range moved by 2·ln s is the raw
diffusion re-expressed (same ELBO), the buffers travel with the weights, and sampling returns
latents in the autoencoder's units."""

from __future__ import annotations

import math

import pytest
import torch

from unified_latents.diffusion.process import Prediction, alpha_sigma, broadcast_to
from unified_latents.networks.vit import ViTConfig
from unified_latents.objectives.latent_diffusion import BaseModelConfig, LatentDiffusion

SHAPE = (2, 4, 4)


def model(normalization: str, *, noisy: bool = True) -> LatentDiffusion:
    config = BaseModelConfig(
        network=ViTConfig(width=16, depth=1, heads=2),
        schedule="linear",  # shifting both ends shifts λ(t) exactly: per-example equality
        latent_normalization=normalization,  # type: ignore[arg-type]
    )
    return LatentDiffusion(config, SHAPE, 5.0, noise_in_latent_units=noisy)


def predict_zero(z_t: torch.Tensor, logsnr: torch.Tensor, cond: object) -> Prediction:
    """x̂ = 0 in the model's own units: the data mean, for centred data in either units."""
    _, sigma = alpha_sigma(logsnr)
    return Prediction(torch.zeros_like(z_t), z_t / broadcast_to(sigma, z_t))


def test_normalised_elbo_equals_raw_elbo_for_the_same_predictor() -> None:
    std = 0.25
    z = std * torch.randn(64, *SHAPE, generator=torch.Generator().manual_seed(0))
    raw, normalised = model("none"), model("scalar")
    normalised.set_latent_statistics(0.0, std)
    assert normalised.logsnr_max == pytest.approx(5.0 + 2 * math.log(std))
    for m in (raw, normalised):
        m.denoise = predict_zero  # type: ignore[method-assign]
    terms = [m(z, None, torch.Generator().manual_seed(1)) for m in (raw, normalised)]
    torch.testing.assert_close(terms[0].elbo_nats, terms[1].elbo_nats, rtol=1e-4, atol=1e-4)
    # and it is not trivially equal: the weighted loss moved with the weighting's λ
    assert not torch.allclose(terms[0].weighted_nats, terms[1].weighted_nats)


def test_kl_style_latents_keep_their_lambda_range() -> None:
    normalised = model("scalar", noisy=False)
    normalised.set_latent_statistics(0.3, 0.5)
    assert normalised.logsnr_max == 5.0 and normalised.schedule.logsnr_min == -15.0


def test_normalize_round_trip_and_buffers_in_the_state_dict() -> None:
    first = model("scalar")
    first.set_latent_statistics(0.7, 0.2)
    z = torch.randn(3, *SHAPE)
    torch.testing.assert_close(first.denormalize(first.normalize(z)), z)
    torch.testing.assert_close(first.normalize(z), (z - 0.7) / 0.2)
    second = model("scalar")
    second.load_state_dict(first.state_dict())
    assert float(second.latent_std) == pytest.approx(0.2)
    assert "latent_std" not in model("none").state_dict()


@pytest.mark.parametrize(("mean", "std"), [(0.0, 0.0), (float("nan"), 1.0), (0.0, -1.0)])
def test_bad_statistics_are_refused(mean: float, std: float) -> None:
    with pytest.raises(ValueError, match="latent statistics"):
        model("scalar").set_latent_statistics(mean, std)


def test_unknown_normalization_is_refused() -> None:
    with pytest.raises(ValueError, match="latent_normalization"):
        BaseModelConfig(latent_normalization="per-channel")  # type: ignore[arg-type]
