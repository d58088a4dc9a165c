"""Stage 1 of Unified Latents: encoder + diffusion prior + diffusion decoder (UL-SPEC §4–§7).

    z_clean = E(x)                          deterministic encoder (§4)
    z_0     = α_0 z_clean + σ_0 ε,  λ_0 = 5  fixed encoder noise (§4)
    L_z     = unweighted prior ELBO + terminal KL on z_clean, λ ∈ [λ_min, λ_0]   "rate" (§5)
    L_x     = sigmoid(b − λ)-weighted decoder ELBO on x given z_0           "distortion" (§6)
    L       = L_z + c_lf · L_x,  one optimizer, no stop-gradients (§7)

`UnifiedLatents.forward(x, generator)` returns the per-example terms, so the module can be wrapped
in DistributedDataParallel and driven by the shared training loop. Its settings,
`UnifiedLatentsConfig`, are `objectives/unified_latents_config.py`'s (importable from here too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from unified_latents.config import ConfigError
from unified_latents.diffusion.elbo import diffusion_loss, terminal_kl
from unified_latents.diffusion.process import Prediction, diffuse
from unified_latents.diffusion.weighting import elbo_weight, sigmoid_weight, stratified_uniform
from unified_latents.networks.conditioning import ConditionConfig
from unified_latents.networks.denoiser import Denoiser
from unified_latents.networks.registry import build_decoder, build_encoder, build_prior
from unified_latents.networks.video import FrameEncoder
from unified_latents.objectives.autoencoder import Autoencoder, latent_size_for
from unified_latents.objectives.rate_control import RateController
from unified_latents.objectives.terms import LossTerms
from unified_latents.objectives.unified_latents_config import UnifiedLatentsConfig
from unified_latents.sampling.samplers import SamplerKind, sample


@dataclass(frozen=True)
class Stage1Terms(LossTerms):
    """Per-example [B] terms of the stage-1 loss, all in nats."""

    rate_nats: Tensor  # L_z = prior diffusion ELBO + terminal KL ≥ KL(q(z_0|x) ‖ p(z_0))
    prior_diffusion_nats: Tensor
    prior_terminal_nats: Tensor
    distortion_nats: Tensor  # L_x, sigmoid-weighted decoder loss (before c_lf)


@dataclass(frozen=True)
class RateTargetedTerms(Stage1Terms):
    """With rate targeting: also the controller's c_lf, its rate averages r̄ and r̃ and its
    held-out ratio ρ (logged)."""

    loss_factor: Tensor
    rate_average_bits_per_pixel: Tensor
    rate_slow_average_bits_per_pixel: Tensor
    rate_held_out_ratio: Tensor


def randn(like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise with an explicit generator (DESIGN: RNG is explicit)."""
    return torch.randn(like.shape, generator=generator, device=like.device, dtype=torch.float32)


class UnifiedLatents(Autoencoder):
    """Encoder, prior and decoder of a UL autoencoder, with the stage-1 loss as `forward`.
    The networks come from `make_encoder`, `make_prior` and `make_decoder`, which the §10
    ablations (`objectives/baselines.py`) override."""

    def __init__(
        self,
        config: UnifiedLatentsConfig,
        image_channels: int,
        image_size: int,
        num_frames: int = 0,
    ) -> None:
        super().__init__()
        self.config = config
        self.image_channels, self.image_size = image_channels, image_size
        self.num_frames = num_frames  # clips [C, T, H, W] when > 0 (networks/video.py)
        self.latent_frames = config.video.latent_frames(num_frames) if num_frames else 0
        self.encoder = self.make_encoder()
        self.latent_size = latent_size_for(self.encoder, image_size)
        self.latent_channels = config.encoder.latent_channels
        self.prior = self.make_prior()
        self.decoder = self.make_decoder()
        self.latent_schedule = config.latent_noise_schedule()
        self.pixel_schedule = config.pixel_noise_schedule()
        self.rate_controller: RateController | None = None
        if config.target_bits_per_pixel > 0:  # its buffers join the checkpoint
            self.rate_controller = RateController(
                config.rate_control,
                config.target_bits_per_pixel,
                config.loss_factor,
                start_step=config.rate_warmup_steps,
            )

    def make_encoder(self) -> nn.Module:
        """x → z_clean; the module exposes `downsample_factor`."""
        config = self.config
        if self.num_frames:
            if config.encoder_network != "conv":
                raise ConfigError("video autoencoders use model.encoder_network=conv")
            return FrameEncoder(config.encoder, self.image_channels, config.video)
        return build_encoder(config.encoder_network, config.encoder, self.image_channels)

    def make_prior(self) -> nn.Module:
        """The diffusion prior over z_clean (spec §5), called after the latent size is known."""
        config = self.config
        prior_net = build_prior(
            config.prior_network,
            config.prior,
            channels=self.latent_channels,
            size=self.latent_size,
            condition=ConditionConfig(),
            **self.video_arguments(decoder=False),
        )
        return Denoiser(prior_net, config.parameterization)

    def make_decoder(self) -> nn.Module:
        """The diffusion decoder p(x | z_0) (spec §6)."""
        config = self.config
        decoder_net = build_decoder(
            config.decoder_network,
            config.decoder,
            image_channels=self.image_channels,
            image_size=self.image_size,
            latent_channels=self.latent_channels,
            latent_size=self.latent_size,
            default_z_logsnr=config.logsnr_0,
            **self.video_arguments(decoder=True),
        )
        return Denoiser(decoder_net, config.parameterization)

    def video_arguments(self, decoder: bool) -> dict[str, int | str]:
        """The networks' clip arguments (none for images): the decoder's frames and latent
        frames, the prior's latent frames."""
        if not self.num_frames:
            return {}
        attention = self.config.video.attention
        if decoder:
            frames = {"frames": self.num_frames, "latent_frames": self.latent_frames}
            return {**frames, "attention": attention}
        return {"frames": self.latent_frames, "attention": attention}

    @property
    def latent_logsnr_max(self) -> float:
        """The base model's λ_max is λ_0 (one field, spec §4)."""
        return self.config.logsnr_0

    def encode(self, x: Tensor) -> Tensor:
        """z_clean = E(x), fp32 [B, c, h, w]; no rescaling (spec §4)."""
        return self.encoder(x).float()

    def add_encoder_noise(self, z_clean: Tensor, generator: torch.Generator | None) -> Tensor:
        """z_0 = α_0 z_clean + σ_0 ε with fresh ε (spec §4)."""
        logsnr_0 = torch.full((z_clean.shape[0],), self.config.logsnr_0, device=z_clean.device)
        return diffuse(z_clean, logsnr_0, randn(z_clean, generator))

    def rate(self, z_clean: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """Prior ELBO terms (spec §5): (L_diff [B], L_T [B]) in nats; the weighting is 1."""
        schedule = self.latent_schedule
        t = stratified_uniform(z_clean.shape[0], generator=generator, device=z_clean.device)
        logsnr = schedule.logsnr(t)
        eps = randn(z_clean, generator)
        prediction = self.prior(diffuse(z_clean, logsnr, eps), logsnr)
        diffusion = diffusion_loss(
            eps, prediction.eps_hat, schedule.dlogsnr_dt(t), elbo_weight(logsnr)
        )
        return diffusion, terminal_kl(z_clean, schedule.logsnr_min)

    def distortion(
        self,
        x: Tensor,
        z_0: Tensor,
        generator: torch.Generator | None,
        z_logsnr: Tensor | None = None,
    ) -> Tensor:
        """Decoder loss (spec §6): ½(−λ')·sigmoid(b−λ)·Σ(ε − ε̂)², per example [B] in nats.
        `z_logsnr` [B] is the latent's noise level when it is not λ_0 (single stage, §9)."""
        schedule = self.pixel_schedule
        t = stratified_uniform(x.shape[0], generator=generator, device=x.device)
        logsnr = schedule.logsnr(t)
        eps = randn(x, generator)
        prediction = self.decoder(diffuse(x, logsnr, eps), logsnr, z_0, z_logsnr)
        weight = sigmoid_weight(logsnr, self.config.decoder_bias)
        return diffusion_loss(eps, prediction.eps_hat, schedule.dlogsnr_dt(t), weight)

    def forward(
        self, x: Tensor, generator: torch.Generator | None = None, rate_weight: float = 1.0
    ) -> Stage1Terms:
        """L = L_z + c_lf · L_x per example (spec §7); gradients reach the encoder from both.
        `rate_weight` < 1 only during the optional rate warm-up."""
        z_clean = self.encode(x)
        prior_diffusion, prior_terminal = self.rate(z_clean, generator)
        rate = prior_diffusion + prior_terminal
        distortion = self.distortion(x, self.add_encoder_noise(z_clean, generator), generator)
        terms = {
            "rate_nats": rate,
            "prior_diffusion_nats": prior_diffusion,
            "prior_terminal_nats": prior_terminal,
            "distortion_nats": distortion,
        }
        controller = self.rate_controller
        if controller is None:
            return Stage1Terms(
                loss=rate_weight * rate + self.config.loss_factor * distortion, **terms
            )
        loss_factor = controller.loss_factor.clone()  # this step's c_lf
        if self.training and rate_weight >= 1.0:  # after the warm-up: one control step
            pixels = math.prod(self.image_shape[1:])  # per frame pixel for clips
            controller.update(rate.detach().mean() / (math.log(2.0) * pixels))
        return RateTargetedTerms(
            loss=rate_weight * rate + loss_factor * distortion,
            **terms,
            loss_factor=loss_factor.expand_as(rate),
            rate_average_bits_per_pixel=controller.rate_average.clone().expand_as(rate),
            rate_slow_average_bits_per_pixel=controller.slow_rate_average.clone().expand_as(rate),
            rate_held_out_ratio=controller.held_out_ratio.clone().expand_as(rate),
        )

    @torch.no_grad()
    def decode(
        self,
        z: Tensor,
        *,
        num_steps: int,
        sampler: SamplerKind = "ancestral",
        generator: torch.Generator | None = None,
        progress: bool = False,
    ) -> Tensor:
        """Sample x ~ p(x | z) with the diffusion decoder from x_1 ~ N(0, I) (spec §8)."""
        noise = torch.randn((z.shape[0], *self.image_shape), generator=generator, device=z.device)

        def denoise(x_t: Tensor, logsnr: Tensor) -> Prediction:
            return self.decoder(x_t, logsnr, z)

        return sample(
            denoise,
            noise,
            schedule=self.pixel_schedule,
            num_steps=num_steps,
            sampler=sampler,
            generator=generator,
            progress=progress,
        )
