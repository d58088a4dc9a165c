"""The Stable-Diffusion-style KL autoencoder baseline ("kl-vae"), trained and evaluated by the same
code as UL (UL-SPEC §10: "Stable-Diffusion latents").

    (μ, log σ²) = E(x)               same conv encoder family, twice the latent channels
    z = μ + σ ε                      reparameterised sample
    x̂ = D(z)                         deterministic conv decoder, the encoder's mirror
    loss = Σ_pixels |x − x̂| (or (x − x̂)²) + kl_weight · KL(q(z|x) ‖ N(0, I))

Choices, and where they differ from LDM (the facts of its method, not its code):
- The reconstruction error is *summed* over pixels, like every loss here; LDM's code also sums its
  pixel loss per image, so its kl_weight = 1e-6 carries over unchanged (the default).
- No LPIPS and no adversarial loss: LPIPS needs pretrained VGG weights, not available offline,
  and the paper's comparison is about the latent, not the GAN. LDM's learned output log-variance
  is also left out (a global rescaling of the reconstruction term).
- Stage 2 models the posterior *means* μ (deterministic, so `ul encode` can cache them once, like
  UL's z_clean), multiplied by 1/std, LDM's "scale factor". The std is a running estimate over the
  training batches (a buffer, so it is in every checkpoint; see `update_latent_statistics`);
  `encode` applies it and `decode` removes it, so sampling decodes the base model's ẑ with D.
- λ_0 (`model.logsnr_0`) is not an encoder noise level here: it is only the base model's λ_max on
  these unit-variance latents. Its default 5 is the UL value, so both baselines' base models use
  the same schedule range.
- The KL to N(0, I) is not a bound on the bits stage 2 needs (the base model is not N(0, I), and
  with kl_weight = 1e-6 the posterior variances are tiny); it is reported as `kl_nats` (bits:
  `kl_bits_*`), never as the rate.
- Clips (`FrameKLAutoencoder`): the same networks on every frame, one latent per frame, as
  image autoencoders are used for video latents in latent video diffusion; no temporal
  downsampling.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import torch
from torch import Tensor

from unified_latents.config import ConfigError
from unified_latents.diffusion.elbo import sum_over_dims
from unified_latents.networks.conv_decoder import ConvDecoder
from unified_latents.networks.registry import build_encoder
from unified_latents.networks.video import fold_frames, unfold_frames
from unified_latents.objectives.autoencoder import (
    Autoencoder,
    ObjectiveConfig,
    OneStepDecoding,
    latent_size_for,
)
from unified_latents.objectives.terms import LossTerms
from unified_latents.objectives.unified_latents import UnifiedLatentsConfig, randn

LOG_VARIANCE_RANGE = (-30.0, 20.0)  # as LDM: keeps exp(log σ²) finite in fp32


@dataclass(frozen=True)
class KLVAETerms(LossTerms):
    """Per-example [B] terms of the KL autoencoder's loss."""

    kl_nats: Tensor  # KL(q(z|x) ‖ N(0, I)) summed over latent dims (not a rate bound)
    reconstruction_error: Tensor  # Σ_pixels |x − x̂| (l1) or (x − x̂)² (l2), x in [−1, 1]


class KLAutoencoder(OneStepDecoding, Autoencoder):
    """Gaussian conv encoder + deterministic conv decoder, with the KL-VAE loss as `forward`."""

    has_latent_prior: ClassVar[bool] = False
    noisy_latents: ClassVar[bool] = False  # λ_max = 5 is a choice for the base model, no noise

    latent_mean: Tensor
    latent_second_moment: Tensor
    latent_batches: Tensor

    def __init__(
        self,
        config: UnifiedLatentsConfig,
        objective: ObjectiveConfig,
        image_channels: int,
        image_size: int,
    ) -> None:
        super().__init__()
        self.config, self.objective = config, objective
        self.image_channels, self.image_size = image_channels, image_size
        channels = config.encoder.latent_channels
        gaussian = replace(config.encoder, latent_channels=2 * channels)  # mean and log-variance
        self.encoder = build_encoder(config.encoder_network, gaussian, image_channels)
        self.latent_size = latent_size_for(self.encoder, image_size)
        self.latent_channels = channels
        self.decoder = ConvDecoder(config.encoder, image_channels)
        # Running moments of μ over training batches → latent scale 1/std (LDM's scale factor).
        self.register_buffer("latent_mean", torch.zeros(()))
        self.register_buffer("latent_second_moment", torch.ones(()))
        self.register_buffer("latent_batches", torch.zeros(()))

    @property
    def latent_logsnr_max(self) -> float:
        return self.config.logsnr_0

    @property
    def latent_scale(self) -> Tensor:
        """1 / std of the posterior means over the training data (a scalar tensor)."""
        variance = self.latent_second_moment - self.latent_mean**2
        return torch.rsqrt(variance.clamp_min(1e-12))

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(μ, log σ²) of q(z|x), fp32, each [B, c, h, w], in the unscaled latent space."""
        mean, log_variance = self.encoder(x).float().chunk(2, dim=1)
        return mean, log_variance.clamp(*LOG_VARIANCE_RANGE)

    def decoder_network(self, z: Tensor) -> Tensor:
        """D(z) on an unscaled latent."""
        return self.decoder(z)

    @torch.no_grad()
    def update_latent_statistics(self, mean: Tensor) -> None:
        """Fold a training batch's μ into the running moments: a cumulative average over the
        first 1/momentum batches (so short runs get a real estimate), then exponential."""
        self.latent_batches += 1
        weight = max(self.objective.scale_momentum, 1.0 / float(self.latent_batches))
        self.latent_mean.lerp_(mean.mean(), weight)
        self.latent_second_moment.lerp_((mean**2).mean(), weight)

    def forward(
        self, x: Tensor, generator: torch.Generator | None = None, rate_weight: float = 1.0
    ) -> KLVAETerms:
        """Per-example loss; `rate_weight` (< 1 during the optional warm-up) scales the KL."""
        mean, log_variance = self.posterior(x)
        if self.training:
            self.update_latent_statistics(mean.detach())
        z = mean + torch.exp(0.5 * log_variance) * randn(mean, generator)  # [B, c, h, w]
        error = x.float() - self.decoder_network(z).float()  # [B, C, H, W]
        per_pixel = error.abs() if self.objective.reconstruction_loss == "l1" else error**2
        reconstruction = sum_over_dims(per_pixel)
        kl = 0.5 * sum_over_dims(mean**2 + log_variance.exp() - log_variance - 1.0)
        return KLVAETerms(
            loss=reconstruction + rate_weight * self.objective.kl_weight * kl,
            kl_nats=kl,
            reconstruction_error=reconstruction,
        )

    def encode(self, x: Tensor) -> Tensor:
        """The scaled posterior mean μ / std: stage 2's latent, fp32 [B, c, h, w]."""
        mean, _ = self.posterior(x)
        return mean * self.latent_scale

    def decode_once(self, z: Tensor) -> Tensor:
        """x̂ = D(z · std) for a latent in `encode`'s scale; `reconstruct` is then D(μ), the
        deterministic reconstruction from the posterior mean (no encoder noise)."""
        return self.decoder_network(z / self.latent_scale).float()


class FrameKLAutoencoder(KLAutoencoder):
    """The KL autoencoder on clips [B, C, T, H, W]: every frame encoded and decoded on its own,
    latents [B, c, T, h, w]; the loss sums over all frames, like UL's on clips."""

    def __init__(
        self,
        config: UnifiedLatentsConfig,
        objective: ObjectiveConfig,
        image_channels: int,
        image_size: int,
        num_frames: int,
    ) -> None:
        if config.video.temporal_downsample != 1:
            raise ConfigError(
                "the KL-VAE baseline encodes every frame on its own: set "
                f"model.video.temporal_downsample=1 (got {config.video.temporal_downsample})"
            )
        super().__init__(config, objective, image_channels, image_size)
        self.num_frames = self.latent_frames = num_frames

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(μ, log σ²), each [B, c, T, h, w]."""
        if x.dim() != 5:
            raise ValueError(f"a video autoencoder expects clips [B, C, T, H, W], got {x.shape}")
        mean, log_variance = super().posterior(fold_frames(x))
        frames = x.shape[2]
        return unfold_frames(mean, frames), unfold_frames(log_variance, frames)

    def decoder_network(self, z: Tensor) -> Tensor:
        return unfold_frames(self.decoder(fold_frames(z)), z.shape[2])
