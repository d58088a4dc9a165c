"""The paper's stage-1 ablations (UL-SPEC §10), each a small change to `UnifiedLatents`.

Selected by `ObjectiveConfig.kind` (registry: `objectives/registry.py`); everything else (encoder,
λ_0, schedules, c_lf, b, the training loop, stage 2) is shared with UL. λ_0 = 10 needs no code:
it is the preset `ul-lambda10`. The KL autoencoder baseline is in `kl_vae.py`.

- "ul-mse-decoder": diffusion prior kept; the decoder is the deterministic conv decoder trained
  with a squared error on x given z_0 (`MSEDecoderLatents`).
- "ul-normal-prior": no diffusion prior; rate = KL(q(z_0|x) ‖ N(0, I)) in closed form with the
  fixed σ_0 encoder noise; diffusion decoder kept (`NormalPriorLatents`).
- "ul-stopgrad-prior": the prior is fitted to z_clean.detach(), so no prior gradient reaches the
  encoder, which is regularised instead by a discounted KL(q(z_0|x) ‖ N(0, I)), as in LDM
  (`StopGradPriorLatents`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from unified_latents.diffusion.elbo import sum_over_dims, terminal_kl
from unified_latents.networks.conv_decoder import ConvDecoder
from unified_latents.objectives.autoencoder import ObjectiveConfig, OneStepDecoding
from unified_latents.objectives.unified_latents import (
    Stage1Terms,
    UnifiedLatents,
    UnifiedLatentsConfig,
)


def normal_prior_kl(z_clean: Tensor, logsnr_0: float) -> Tensor:
    """KL(q(z_0|x) ‖ N(0, I)) per example [B] in nats, for z_0 = α_0 z_clean + σ_0 ε:

    ½ Σ_dims (α_0² z_clean² + σ_0² − log σ_0² − 1): the prior's terminal KL (spec §5) taken at
    λ_0 instead of λ_min, i.e. a diffusion prior whose λ-range is empty.
    """
    return terminal_kl(z_clean, logsnr_0)


def mse_decoder_weight(logsnr_min: float, logsnr_max: float, bias: float) -> float:
    """W = ∫_{λmin}^{λmax} sigmoid(b − λ) e^λ dλ = e^b [softplus(λmax − b) − softplus(λmin − b)].

    A diffusion decoder that ignores x_t and predicts x̂ = D(z_0) at every noise level has
    ‖ε − ε̂‖² = e^λ ‖x − x̂‖² (spec §2), so its sigmoid-weighted loss (spec §6) is exactly
    ½ W ‖x − x̂‖². Using that as the MSE decoder's distortion keeps c_lf's meaning: the same
    exchange rate between latent nats and (weighted) decoder nats as for UL.
    """

    def softplus(value: float) -> float:
        return max(value, 0.0) + math.log1p(math.exp(-abs(value)))

    return math.exp(bias) * (softplus(logsnr_max - bias) - softplus(logsnr_min - bias))


class UnifiedLatentsAblation(UnifiedLatents):
    """UL with one change (UL-SPEC §10): built as UL is, keeping the `ObjectiveConfig` that names
    the change (and its settings, e.g. `kl_weight`)."""

    def __init__(
        self,
        config: UnifiedLatentsConfig,
        objective: ObjectiveConfig,
        image_channels: int,
        image_size: int,
    ) -> None:
        super().__init__(config, image_channels, image_size)
        self.objective = objective


class MSEDecoderLatents(OneStepDecoding, UnifiedLatentsAblation):
    """UL with the diffusion prior and a deterministic decoder x̂ = D(z_0) (paper: "L2").

    distortion = ½ · W · Σ_pixels (x − D(z_0))²  with W = `mse_decoder_weight` of the pixel
    schedule's range and the decoder bias b (≈ 15 for the default λ ∈ [−15, 15], b = 0), i.e. a
    Gaussian likelihood with variance 1/W up to a constant. The decoder mirrors the encoder
    (`networks/conv_decoder.py`); the `model.decoder` (UViT) settings are unused.
    """

    @property
    def distortion_weight(self) -> float:
        config = self.config
        return mse_decoder_weight(
            config.pixel_logsnr_min, config.pixel_logsnr_max, config.decoder_bias
        )

    def make_decoder(self) -> nn.Module:
        return ConvDecoder(self.config.encoder, self.image_channels)

    def distortion(
        self,
        x: Tensor,
        z_0: Tensor,
        generator: torch.Generator | None,
        z_logsnr: Tensor | None = None,
    ) -> Tensor:
        """½ W Σ (x − D(z_0))² per example [B] in nats (no noise is drawn)."""
        x_hat = self.decoder(z_0).float()  # [B, C, H, W]
        return 0.5 * self.distortion_weight * sum_over_dims((x.float() - x_hat) ** 2)

    def decode_once(self, z: Tensor) -> Tensor:
        """x̂ = D(z): one network evaluation."""
        return self.decoder(z).float()


class NoPrior(nn.Module):
    """Stands in for the diffusion prior of a model whose prior is N(0, I) (no parameters)."""

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        raise RuntimeError("this model's prior is N(0, I): use its closed-form `rate`")


class NormalPriorLatents(UnifiedLatentsAblation):
    """UL with a fixed N(0, I) prior on z_0 and the diffusion decoder.

    rate = KL(q(z_0|x) ‖ N(0, I)) exactly (closed form, `normal_prior_kl`); it is reported as
    `prior_terminal_nats`, with `prior_diffusion_nats` ≡ 0, so the terms keep UL's names. The
    `model.prior` settings are unused.
    """

    def make_prior(self) -> nn.Module:
        return NoPrior()

    def rate(self, z_clean: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """(0, KL(q(z_0|x) ‖ N(0, I))) per example [B] in nats; no noise is drawn."""
        kl = normal_prior_kl(z_clean, self.config.logsnr_0)
        return torch.zeros_like(kl), kl


@dataclass(frozen=True)
class StopGradTerms(Stage1Terms):
    """UL's terms (the rate is still the prior's bound on the bits of z_0) plus the encoder's
    regulariser, before its weight `objective.kl_weight`."""

    encoder_kl_nats: Tensor  # KL(q(z_0|x) ‖ N(0, I)), the only rate gradient the encoder gets


class StopGradPriorLatents(UnifiedLatentsAblation):
    """UL whose prior cannot shape the latent (the paper's LDM-like ablation):

        loss = L_z(sg(z_clean)) + kl_weight · KL(q(z_0|x) ‖ N(0, I)) + c_lf · L_x

    The prior still trains on the latents and its ELBO is still an upper bound on their bits
    (reported as `rate_nats`); the encoder gets gradients only from the decoder and the
    discounted KL.
    """

    def forward(
        self, x: Tensor, generator: torch.Generator | None = None, rate_weight: float = 1.0
    ) -> StopGradTerms:
        z_clean = self.encode(x)
        prior_diffusion, prior_terminal = self.rate(z_clean.detach(), generator)
        rate = prior_diffusion + prior_terminal
        encoder_kl = normal_prior_kl(z_clean, self.config.logsnr_0)
        distortion = self.distortion(x, self.add_encoder_noise(z_clean, generator), generator)
        regularizer = rate + self.objective.kl_weight * encoder_kl
        return StopGradTerms(
            loss=rate_weight * regularizer + self.config.loss_factor * distortion,
            rate_nats=rate,
            prior_diffusion_nats=prior_diffusion,
            prior_terminal_nats=prior_terminal,
            distortion_nats=distortion,
            encoder_kl_nats=encoder_kl,
        )
