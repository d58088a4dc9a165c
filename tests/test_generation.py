"""generation.py: decoding the base model's ẑ, one sample or the mean of several."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import Tensor

from unified_latents.generation import SamplingConfig, decode_latents


class NoisyDecoder:
    """Stands in for an autoencoder: decode(z) = z + ε with ε drawn from the generator, so the
    mean of K decodings is z + the mean of K noises, which the test recomputes."""

    def decode(
        self, z: Tensor, *, num_steps: int, sampler: str, generator: torch.Generator
    ) -> Tensor:
        return z + torch.randn(z.shape, generator=generator)

    def add_encoder_noise(self, z: Tensor, generator: torch.Generator) -> Tensor:
        return z + 0.1 * torch.randn(z.shape, generator=generator)


def test_one_decoder_sample_is_the_plain_decoding() -> None:
    z = torch.randn(3, 4, 2, 2)
    settings = SamplingConfig()
    got = decode_latents(NoisyDecoder(), z, settings, torch.Generator().manual_seed(5))  # type: ignore[arg-type]
    want = z + torch.randn(z.shape, generator=torch.Generator().manual_seed(5))
    assert torch.equal(got, want)


@pytest.mark.parametrize("decoder_input", ["clean", "noisy"])
def test_k_decoder_samples_average_k_draws(decoder_input: str) -> None:
    z = torch.randn(2, 4, 2, 2)
    settings = replace(SamplingConfig(), decoder_samples=4, decoder_input=decoder_input)
    got = decode_latents(NoisyDecoder(), z, settings, torch.Generator().manual_seed(7))  # type: ignore[arg-type]
    generator = torch.Generator().manual_seed(7)
    draws = []
    for _ in range(4):
        z_k = z
        if decoder_input == "noisy":
            z_k = z + 0.1 * torch.randn(z.shape, generator=generator)
        draws.append(z_k + torch.randn(z.shape, generator=generator))
    torch.testing.assert_close(got, torch.stack(draws).mean(0))
    # the mean of 4 unit-variance draws has variance 1/4 (+ 0.01 for the noisy input): far below 1
    assert float((got - z).var()) < 0.6


def test_decoder_samples_must_be_positive() -> None:
    with pytest.raises(ValueError, match="decoder_samples"):
        SamplingConfig(decoder_samples=0)
