"""Stage-1 objective: finite, signed terms; λ_0 shared; gradients reach the encoder from both
terms; c_lf scales only the distortion; one batch can be overfitted."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from tests.helpers import check_stage1_terms, digit_images
from unified_latents.diffusion.process import alpha_sigma
from unified_latents.networks.encoder import EncoderConfig
from unified_latents.networks.uvit import UViTConfig
from unified_latents.networks.vit import ViTConfig
from unified_latents.objectives.unified_latents import UnifiedLatents, UnifiedLatentsConfig

TINY = UnifiedLatentsConfig(
    encoder=EncoderConfig(channels=(8, 16), blocks_per_stage=1, latent_channels=2),
    prior=ViTConfig(width=16, depth=1, heads=2),
    decoder=UViTConfig(
        channels=(8, 16), blocks_per_stage=1, transformer_width=16, transformer_depth=1, heads=2
    ),
)


def model(config: UnifiedLatentsConfig = TINY) -> UnifiedLatents:
    torch.manual_seed(0)
    return UnifiedLatents(config, image_channels=1, image_size=8)


def test_terms_are_finite_positive_and_combine_as_the_spec() -> None:
    terms = model()(digit_images(), torch.Generator().manual_seed(0))
    assert terms.loss.shape == (6,)
    check_stage1_terms(terms, (terms.prior_diffusion_nats, terms.prior_terminal_nats))


def test_logsnr_0_is_one_field_for_encoder_noise_and_prior_top() -> None:
    net = model(replace(TINY, logsnr_0=3.0))
    assert net.latent_schedule.logsnr_max == 3.0
    z = torch.zeros(4000, 2, 4, 4)
    z_0 = net.add_encoder_noise(z, torch.Generator().manual_seed(0))
    _, sigma_0 = alpha_sigma(torch.tensor(3.0))
    assert abs(z_0.std().item() - sigma_0.item()) < 0.01


def test_encoder_gets_gradients_from_rate_and_distortion() -> None:
    net = model()
    for parameter in net.parameters():  # leave the zero-init start so gradients can flow
        parameter.data.add_(0.05 * torch.randn_like(parameter))
    x = digit_images()
    for term in ("rate_nats", "distortion_nats"):
        net.zero_grad()
        getattr(net(x, torch.Generator().manual_seed(0)), term).mean().backward()
        grads = [p.grad for p in net.encoder.parameters() if p.grad is not None]
        assert grads and sum(g.abs().sum() for g in grads) > 0, term


def test_no_latent_rescaling_or_squashing() -> None:
    net = model()
    name, bias = list(net.encoder.named_parameters())[-1]
    assert name.endswith("bias")
    with torch.no_grad():
        bias.fill_(10.0)  # the output layer's bias passes straight through: no tanh, no rescale
    z = net.encode(digit_images())
    assert z.min() > 5.0


def test_overfits_one_batch() -> None:
    net = model()
    x = digit_images(8)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for step in range(150):
        optimizer.zero_grad()
        loss = net(x, torch.Generator().manual_seed(step)).loss.mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.5 * first, (first, last)


@pytest.mark.parametrize("sampler", ["ancestral", "ddim"])
def test_reconstruct_shape_range_and_seed(sampler: str) -> None:
    net = model().eval()
    x = digit_images(3)
    a = net.reconstruct(
        x,
        num_steps=4,
        sampler=sampler,  # type: ignore[arg-type]
        generator=torch.Generator().manual_seed(5),
    )
    b = net.reconstruct(
        x,
        num_steps=4,
        sampler=sampler,  # type: ignore[arg-type]
        generator=torch.Generator().manual_seed(5),
    )
    assert a.shape == x.shape and torch.equal(a, b) and math.isfinite(a.abs().max().item())
