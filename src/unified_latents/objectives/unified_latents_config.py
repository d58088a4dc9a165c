"""The settings of a Unified Latents autoencoder (`objectives/unified_latents.py`, UL-SPEC §4–§7):
its three networks, λ_0, the latent and pixel noise schedules, c_lf, the decoder bias, and the
optional rate warm-up and rate targeting."""

from __future__ import annotations

from dataclasses import dataclass, field

from unified_latents.diffusion.schedules import LogSNRSchedule, ScheduleKind
from unified_latents.networks.denoiser import Parameterization
from unified_latents.networks.encoder import EncoderConfig
from unified_latents.networks.uvit import UViTConfig
from unified_latents.networks.video import VideoConfig
from unified_latents.networks.vit import ViTConfig
from unified_latents.objectives.rate_control import RateControlConfig


@dataclass(frozen=True, kw_only=True)
class UnifiedLatentsConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    prior: ViTConfig = field(default_factory=ViTConfig)
    decoder: UViTConfig = field(default_factory=UViTConfig)
    encoder_network: str = "conv"
    prior_network: str = "vit"
    decoder_network: str = "uvit"
    parameterization: Parameterization = "v"
    # λ_0: ONE field for the encoder noise and the prior's λ_max (spec §4).
    logsnr_0: float = 5.0
    latent_logsnr_min: float = -15.0  # λ_z(1) (spec §3) [C]
    latent_schedule: ScheduleKind = "cosine"
    pixel_logsnr_min: float = -15.0
    pixel_logsnr_max: float = 15.0
    pixel_schedule: ScheduleKind = "cosine"
    pixel_schedule_shift: float = 0.0  # e.g. 2·log(d_ref/d_img) with "shifted-cosine" [C]
    loss_factor: float = 1.5  # c_lf (spec §7)
    decoder_bias: float = 0.0  # b in sigmoid(b − λ) (spec §6) [C]
    # Training aid [C], not in the paper: ramp the rate term's weight 0 → 1 over this many steps
    # so the latent does not collapse before the decoder has learned to read it. 0 = off.
    rate_warmup_steps: int = 0
    # Rate targeting [D] (objectives/rate_control.py): > 0 makes `loss_factor` the starting
    # c_lf of a controller that steers the training rate to this many bits/pixel. 0 = off.
    target_bits_per_pixel: float = 0.0
    rate_control: RateControlConfig = field(default_factory=RateControlConfig)
    video: VideoConfig = field(default_factory=VideoConfig)  # used when the data are clips

    def rate_weight(self, step: int) -> float:
        """Weight of L_z at optimizer step `step`: 1 once the warm-up is over (the true loss)."""
        if self.rate_warmup_steps <= 0:
            return 1.0
        return min(1.0, step / self.rate_warmup_steps)

    def __post_init__(self) -> None:
        if self.loss_factor <= 0:
            raise ValueError(f"loss_factor must be positive, got {self.loss_factor}")
        if self.target_bits_per_pixel < 0:
            raise ValueError(
                f"target_bits_per_pixel must be ≥ 0 (0 = off), got {self.target_bits_per_pixel}"
            )
        if not self.latent_logsnr_min < self.logsnr_0:
            raise ValueError("latent_logsnr_min must be below logsnr_0")

    def latent_noise_schedule(self) -> LogSNRSchedule:
        return LogSNRSchedule(
            kind=self.latent_schedule, logsnr_min=self.latent_logsnr_min, logsnr_max=self.logsnr_0
        )

    def pixel_noise_schedule(self) -> LogSNRSchedule:
        return LogSNRSchedule(
            kind=self.pixel_schedule,
            logsnr_min=self.pixel_logsnr_min,
            logsnr_max=self.pixel_logsnr_max,
            shift=self.pixel_schedule_shift,
        )
