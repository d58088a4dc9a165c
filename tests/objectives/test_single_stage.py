"""Single-stage objective (UL-SPEC §9). The key check: for a fixed denoiser, the average over λ_aug
of the unweighted ELBOs restricted to λ ≤ λ_aug equals the sigmoid(b − λ)-weighted loss."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest
import scipy.integrate
import torch
from torch import Tensor

from tests.helpers import check_stage1_terms, digit_images
from tests.oracles import GaussianOracle
from unified_latents.diffusion.elbo import diffusion_loss
from unified_latents.diffusion.process import Prediction, diffuse
from unified_latents.diffusion.schedules import LogSNRSchedule
from unified_latents.diffusion.weighting import (
    sample_truncated_logistic,
    sigmoid_weight,
    stratified_uniform,
)
from unified_latents.networks.conditioning import ConditionConfig
from unified_latents.networks.encoder import EncoderConfig
from unified_latents.networks.uvit import UViTConfig
from unified_latents.networks.vit import ViTConfig
from unified_latents.objectives.latent_diffusion import BaseModelConfig
from unified_latents.objectives.single_stage import (
    SingleStageConfig,
    SingleStageLatents,
    restricted_elbo,
)
from unified_latents.objectives.unified_latents import UnifiedLatentsConfig

SCHEDULE = LogSNRSchedule(logsnr_min=-15.0, logsnr_max=5.0)
DATA = GaussianOracle(
    mean=torch.tensor([0.5, -1.0, 2.0, 0.0]), std=torch.tensor([1.0, 0.3, 2.0, 0.05])
)
# A fixed denoiser that is deliberately wrong for DATA (the exact one for N(0, I)), so the loss is
# not special to the optimum.
WRONG = GaussianOracle(mean=torch.zeros(4), std=torch.ones(4))


def fixed_denoiser(z_t: Tensor, logsnr: Tensor, cond: Tensor | None) -> Prediction:
    return WRONG.exact_denoiser(z_t, logsnr)


def weighted_loss(
    z: Tensor, bias: float, schedule: LogSNRSchedule, generator: torch.Generator
) -> Tensor:
    """The two-stage base loss ½(−λ')·sigmoid(b − λ)·Σ(ε − ε̂)², t ~ U(0, 1) (spec §8)."""
    t = stratified_uniform(z.shape[0], generator=generator)
    logsnr = schedule.logsnr(t)
    eps = torch.randn(z.shape, generator=generator)
    eps_hat = fixed_denoiser(diffuse(z, logsnr, eps), logsnr, None).eps_hat
    return diffusion_loss(eps, eps_hat, schedule.dlogsnr_dt(t), sigmoid_weight(logsnr, bias))


def augmented_loss(
    z: Tensor, bias: float, schedule: LogSNRSchedule, generator: torch.Generator
) -> Tensor:
    """The unweighted ELBO of z_aug restricted to λ ≤ λ_aug, λ_aug from the clamped logistic."""
    logsnr_aug = sample_truncated_logistic(
        z.shape[0],
        bias=bias,
        low=schedule.logsnr_min,
        high=schedule.logsnr_max,
        generator=generator,
    )
    return restricted_elbo(fixed_denoiser, z, logsnr_aug, None, schedule, generator)


def exact_weighted_loss(bias: float, schedule: LogSNRSchedule) -> float:
    """∫ sigmoid(b − λ) g(λ) dλ with g(λ) = ½ E‖ε − ε̂‖² in closed form: ε̂ = k (z_λ − α m) with
    k = σ / (α² s'² + σ²) is linear, so per dimension
    E(ε − ε̂)² = (1 − kσ)² + k²α²(s² + (μ − m)²)."""
    mean, std = DATA.mean.double().numpy(), DATA.std.double().numpy()
    m, s_prime = WRONG.mean.double().numpy(), WRONG.std.double().numpy()

    def integrand(logsnr: float) -> float:
        alpha2, sigma2 = 1 / (1 + math.exp(-logsnr)), 1 / (1 + math.exp(logsnr))
        k = math.sqrt(sigma2) / (alpha2 * s_prime**2 + sigma2)
        error = (1 - k * math.sqrt(sigma2)) ** 2 + k**2 * alpha2 * (std**2 + (mean - m) ** 2)
        return float(0.5 * error.sum() / (1 + math.exp(logsnr - bias)))

    value, _ = scipy.integrate.quad(integrand, schedule.logsnr_min, schedule.logsnr_max, limit=200)
    return float(value)


Estimator = Callable[[Tensor, float, LogSNRSchedule, torch.Generator], Tensor]


def monte_carlo(
    estimator: Estimator, bias: float, schedule: LogSNRSchedule, seed: int
) -> tuple[float, float]:
    """Mean and standard error over 32 independent batches (stratification couples a batch)."""
    generator = torch.Generator().manual_seed(seed)
    batch_means = [
        estimator(DATA.sample(4096, generator=generator), bias, schedule, generator).mean().item()
        for _ in range(32)
    ]
    return float(np.mean(batch_means)), float(np.std(batch_means, ddof=1) / math.sqrt(32))


@pytest.mark.parametrize(
    ("bias", "logsnr_min"),
    # P(λ_aug = λ_min), P(λ_aug = λ_0): (0.0000, 0.0067), (0.0000, 0.12), (0.047, 0.0003)
    [(0.0, -15.0), (3.0, -15.0), (-3.0, -6.0)],
)
def test_average_of_augmented_elbos_is_the_sigmoid_weighted_loss(
    bias: float, logsnr_min: float
) -> None:
    """Both Monte-Carlo estimates agree with each other and with the quadrature of the weighted
    loss within 4 standard errors, and the errors are below 1% of the value."""
    schedule = LogSNRSchedule(logsnr_min=logsnr_min, logsnr_max=5.0)
    exact = exact_weighted_loss(bias, schedule)
    weighted, weighted_se = monte_carlo(weighted_loss, bias, schedule, seed=0)
    augmented, augmented_se = monte_carlo(augmented_loss, bias, schedule, seed=1)
    assert abs(weighted - exact) < 4 * weighted_se, (weighted, exact, weighted_se)
    assert abs(augmented - exact) < 4 * augmented_se, (augmented, exact, augmented_se)
    assert abs(augmented - weighted) < 4 * math.hypot(weighted_se, augmented_se)
    assert max(weighted_se, augmented_se) < 0.01 * exact, (weighted_se, augmented_se, exact)


def test_the_identity_detects_a_missing_interval_weight() -> None:
    """Without the 1 − t(λ_aug) factor the estimate is far outside the error bars."""

    def unweighted_interval(
        z: Tensor, bias: float, schedule: LogSNRSchedule, generator: torch.Generator
    ) -> Tensor:
        logsnr_aug = sample_truncated_logistic(
            z.shape[0], bias=bias, low=-15.0, high=5.0, generator=generator
        )
        t_aug = schedule.t_from_logsnr(logsnr_aug).clamp(0, 1)
        elbo = restricted_elbo(fixed_denoiser, z, logsnr_aug, None, schedule, generator)
        return elbo / (1 - t_aug).clamp_min(1e-6)

    wrong, wrong_se = monte_carlo(unweighted_interval, 0.0, SCHEDULE, seed=2)
    assert abs(wrong - exact_weighted_loss(0.0, SCHEDULE)) > 10 * wrong_se


def test_restricted_elbo_ends() -> None:
    """λ_aug = λ_0 is the full unweighted ELBO (same draws); λ_aug = λ_min is empty."""
    z = DATA.sample(64, generator=torch.Generator().manual_seed(0))
    full = restricted_elbo(
        fixed_denoiser, z, torch.full((64,), 5.0), None, SCHEDULE, torch.Generator().manual_seed(1)
    )
    generator = torch.Generator().manual_seed(1)
    plain = weighted_loss(z, 1e4, SCHEDULE, generator)  # sigmoid(b − λ) = 1: the unweighted ELBO
    torch.testing.assert_close(full, plain, rtol=1e-5, atol=1e-6)
    empty = restricted_elbo(fixed_denoiser, z, torch.full((64,), -15.0), None, SCHEDULE, generator)
    assert torch.equal(empty, torch.zeros(64))


TINY = SingleStageConfig(
    autoencoder=UnifiedLatentsConfig(
        encoder=EncoderConfig(channels=(8, 16), blocks_per_stage=1, latent_channels=2),
        prior=ViTConfig(width=16, depth=1, heads=2),
        decoder=UViTConfig(
            channels=(8, 16), blocks_per_stage=1, transformer_width=16, transformer_depth=1, heads=2
        ),
    ),
    base=BaseModelConfig(
        network=ViTConfig(width=16, depth=1, heads=2),
        condition=ConditionConfig(kind="class", num_classes=3),
    ),
)


def model(scheme: str = "noise-augmented", config: SingleStageConfig = TINY) -> SingleStageLatents:
    torch.manual_seed(0)
    net = SingleStageLatents(config, scheme, image_channels=1, image_size=8)  # type: ignore[arg-type]
    for parameter in net.parameters():  # leave the zero-init start so every path carries signal
        parameter.data.add_(0.05 * torch.randn_like(parameter))
    return net


LABELS = torch.tensor([0, 1, 2, 0, 1, 2])


@pytest.mark.parametrize("scheme", ["noise-augmented", "shifted-decoder"])
def test_terms_are_finite_and_combine_as_the_spec(scheme: str) -> None:
    net = model(scheme)
    terms = net(digit_images(), LABELS, torch.Generator().manual_seed(0))
    assert terms.loss.shape == (6,)
    check_stage1_terms(terms, (terms.base_diffusion_nats, terms.base_terminal_nats))
    assert bool(((terms.logsnr_aug >= -15.0) & (terms.logsnr_aug <= 5.0)).all())
    if scheme == "shifted-decoder":
        assert bool((terms.logsnr_aug == 5.0).all())
        assert net.autoencoder.config.decoder_bias == TINY.shifted_decoder_bias
    else:
        assert net.autoencoder.config.decoder_bias == TINY.autoencoder.decoder_bias


def test_decoder_with_logsnr_aug_at_logsnr_0_is_the_plain_decoder() -> None:
    """Conditioning the decoder on (z_aug, λ_aug = λ_0) is exactly the stage-1 path used at
    sampling (no λ_aug given); another λ_aug changes the output."""
    autoencoder = model().autoencoder
    x = digit_images()
    z = torch.randn(6, *autoencoder.latent_shape, generator=torch.Generator().manual_seed(2))

    def distortion(z_logsnr: Tensor | None) -> Tensor:
        return autoencoder.distortion(x, z, torch.Generator().manual_seed(3), z_logsnr=z_logsnr)

    assert torch.equal(distortion(torch.full((6,), 5.0)), distortion(None))
    assert not torch.allclose(distortion(torch.full((6,), 0.0)), distortion(None))


def test_shifted_decoder_rate_is_the_full_base_elbo() -> None:
    """With λ_aug ≡ λ_0 the rate is the base model's unweighted ELBO on z_0 (what we report)."""
    net = model("shifted-decoder", replace(TINY, base=replace(TINY.base, label_dropout=0.0)))
    x = digit_images()
    z_clean = net.autoencoder.encode(x)
    rate = net(x, LABELS, torch.Generator().manual_seed(4)).rate_nats
    # forward draws λ_aug (none here: constant), then t and ε as LatentDiffusion does.
    elbo = net.base(z_clean, LABELS, torch.Generator().manual_seed(4), drop_labels=False).elbo_nats
    torch.testing.assert_close(rate, elbo, rtol=1e-5, atol=1e-4)


def test_gradients_reach_every_part_and_the_prior_placeholder_is_empty() -> None:
    net = model()
    x = digit_images()
    for term, parts in (
        ("rate_nats", ("encoder", "base")),
        ("distortion_nats", ("encoder", "decoder")),
    ):
        net.zero_grad()
        getattr(net(x, LABELS, torch.Generator().manual_seed(0)), term).mean().backward()
        for part in parts:
            module = net.base if part == "base" else getattr(net.autoencoder, part)
            grads = [p.grad for p in module.parameters() if p.grad is not None]
            assert grads and sum(g.abs().sum() for g in grads) > 0, (term, part)
    assert not any(key.startswith("autoencoder.prior") for key in net.state_dict())
    with pytest.raises(RuntimeError, match="base model is the prior"):
        net.autoencoder.rate(net.autoencoder.encode(x), None)
