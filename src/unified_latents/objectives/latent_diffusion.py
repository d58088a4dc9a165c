"""Stage 2: the base diffusion model on frozen UL latents (UL-SPEC §8).

    L_base = ½·(−λ')·sigmoid(b_base − λ)·Σ(ε − ε̂(z_t, λ, cond))²,  λ ∈ [λ_z(1), λ_0], target z_clean

λ_max is the autoencoder's λ_0, read from its checkpoint, never re-typed. The same forward pass
also yields the *unweighted* ELBO (w ≡ 1, plus the terminal KL): the base model's bound on the
latent's bits, Table 5's "latent bpd (base model)".

Latent normalisation (UL-SPEC §8 "Latent scale" [D]; `latent_normalization="scalar"`): the model
diffuses z_n = (z − m)/s, with m and s the mean and std of all cached training latents (one number
each, stored as buffers). A latent that carries the autoencoder's own noise (UL: σ_0 at λ_0 in raw
units) keeps that noise level: in z_n units it sits at λ_0 + 2·ln s, so the whole λ range moves by
2·ln s and the process is the raw one re-expressed; the ELBO is unchanged. `bias` is then a
bias in normalised units, the same for every latent space. One scale for all channels, not one
per channel: per-channel scales would put each channel's λ_0 noise at a different λ, which a
network conditioned on one λ cannot represent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from unified_latents.diffusion.elbo import diffusion_loss, terminal_kl
from unified_latents.diffusion.process import Prediction, diffuse
from unified_latents.diffusion.schedules import LogSNRSchedule, ScheduleKind
from unified_latents.diffusion.weighting import elbo_weight, sigmoid_weight, stratified_uniform
from unified_latents.networks.conditioning import ConditionConfig, drop_condition
from unified_latents.networks.denoiser import Denoiser, Parameterization
from unified_latents.networks.registry import build_prior
from unified_latents.networks.vit import ViTConfig
from unified_latents.objectives.terms import LossTerms

LatentNormalization = Literal["none", "scalar"]


@dataclass(frozen=True, kw_only=True)
class BaseModelConfig:
    network: ViTConfig = field(default_factory=lambda: ViTConfig(width=192, depth=6, heads=6))
    network_kind: str = "vit"
    condition: ConditionConfig = field(default_factory=ConditionConfig)
    parameterization: Parameterization = "v"
    logsnr_min: float = -15.0  # λ_z(1); λ_max comes from the autoencoder (its λ_0)
    schedule: ScheduleKind = "cosine"
    bias: float = 0.0  # b_base in sigmoid(b_base − λ) [C]
    label_dropout: float = 0.1  # condition → null for classifier-free guidance [C]
    # "scalar": diffuse (z − m)/s with the cached latents' mean/std (module docstring) [D].
    # "none" (the dataclass default, so stored configs rebuild unchanged): the raw latents.
    latent_normalization: LatentNormalization = "none"

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_dropout < 1.0:
            raise ValueError(f"label_dropout must be in [0, 1), got {self.label_dropout}")
        if self.latent_normalization not in ("none", "scalar"):
            raise ValueError(
                f"latent_normalization={self.latent_normalization!r}; choose none or scalar"
            )


@dataclass(frozen=True)
class BaseTerms(LossTerms):
    """Per-example [B] terms in nats."""

    weighted_nats: Tensor  # the sigmoid-weighted training loss (== loss)
    elbo_nats: Tensor  # unweighted diffusion ELBO + terminal KL: bound on the latent's bits
    terminal_nats: Tensor


class LatentDiffusion(nn.Module):
    """The stage-2 base model over latents [c, h, w], with its loss as `forward`."""

    latent_mean: Tensor  # buffers, only with latent_normalization="scalar"
    latent_std: Tensor

    def __init__(
        self,
        config: BaseModelConfig,
        latent_shape: tuple[int, int, int],
        logsnr_max: float,
        *,
        noise_in_latent_units: bool = True,
    ) -> None:
        """`logsnr_max`: the autoencoder's λ_max; `noise_in_latent_units`: it is the level of
        noise the latent itself carries (UL's λ_0), so normalising moves it (docstring)."""
        super().__init__()
        self.config = config
        self.latent_shape = latent_shape
        self.raw_logsnr_max = logsnr_max
        self.noise_in_latent_units = noise_in_latent_units
        self.normalized = config.latent_normalization == "scalar"
        if self.normalized:  # set by `set_latent_statistics`, then saved with the weights
            self.register_buffer("latent_mean", torch.zeros(()))
            self.register_buffer("latent_std", torch.ones(()))
        channels, size, _ = latent_shape
        network = build_prior(
            config.network_kind,
            config.network,
            channels=channels,
            size=size,
            condition=config.condition,
        )
        self.denoiser = Denoiser(network, config.parameterization)

    @torch.no_grad()
    def set_latent_statistics(self, mean: float, std: float) -> None:
        """m and s of the training latents (before training; checkpoints then carry them)."""
        if not self.normalized:
            raise ValueError("set_latent_statistics needs latent_normalization='scalar'")
        if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
            raise ValueError(f"latent statistics must be finite with std > 0, got {mean}, {std}")
        self.latent_mean.fill_(mean)
        self.latent_std.fill_(std)

    @property
    def logsnr_shift(self) -> float:
        """2·ln s where the λ range moves with normalisation, else 0."""
        if not (self.normalized and self.noise_in_latent_units):
            return 0.0
        return 2.0 * math.log(float(self.latent_std))

    @property
    def logsnr_max(self) -> float:
        """λ_max in the units the model diffuses (normalised where normalisation is on)."""
        return self.raw_logsnr_max + self.logsnr_shift

    @property
    def schedule(self) -> LogSNRSchedule:
        shift = self.logsnr_shift
        return LogSNRSchedule(
            kind=self.config.schedule,
            logsnr_min=self.config.logsnr_min + shift,
            logsnr_max=self.raw_logsnr_max + shift,
        )

    def normalize(self, z: Tensor) -> Tensor:
        """Latents as the autoencoder encodes them → the units the model diffuses."""
        if not self.normalized:
            return z
        return (z - self.latent_mean) / self.latent_std

    def denormalize(self, z: Tensor) -> Tensor:
        """The model's sample (its final clean estimate) → the autoencoder's latent units."""
        if not self.normalized:
            return z
        return z * self.latent_std + self.latent_mean

    def denoise(self, z_t: Tensor, logsnr: Tensor, cond: Tensor | None) -> Prediction:
        return self.denoiser(z_t, logsnr, cond)

    def forward(
        self,
        z_clean: Tensor,
        cond: Tensor | None,
        generator: torch.Generator | None = None,
        drop_labels: bool = True,
    ) -> BaseTerms:
        """Terms for latents `z_clean` in the autoencoder's units (normalised here)."""
        z_clean = self.normalize(z_clean)
        schedule = self.schedule
        if drop_labels and cond is not None and self.config.label_dropout > 0:
            cond = drop_condition(cond, self.config.condition, self.config.label_dropout, generator)
        t = stratified_uniform(z_clean.shape[0], generator=generator, device=z_clean.device)
        logsnr = schedule.logsnr(t)
        dlogsnr_dt = schedule.dlogsnr_dt(t)
        eps = torch.randn(z_clean.shape, generator=generator, device=z_clean.device)
        prediction = self.denoise(diffuse(z_clean, logsnr, eps), logsnr, cond)
        weighted = diffusion_loss(
            eps, prediction.eps_hat, dlogsnr_dt, sigmoid_weight(logsnr, self.config.bias)
        )
        unweighted = diffusion_loss(
            eps, prediction.eps_hat.detach(), dlogsnr_dt, elbo_weight(logsnr)
        )
        terminal = terminal_kl(z_clean, schedule.logsnr_min)
        return BaseTerms(
            loss=weighted,
            weighted_nats=weighted,
            elbo_nats=unweighted + terminal,
            terminal_nats=terminal,
        )
