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

Video latents [c, T', h, w] (issue 17): the network attends over space and time
(networks/video.py). With `context_frames` = k > 0 the model predicts frames: it is conditioned
on the first k latent frames, given as extra input channels (the clean normalised context and a
mask channel, zero elsewhere; `FrameContext`), and its loss and ELBO cover the other frames only
(on context frames ε̂ is set to ε). `context_dropout` replaces the context by zeros for
classifier-free guidance, whose null condition is then the all-zero context [C: the paper's
Kinetics model conditions on 5 frames; how it is fed is not said].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from unified_latents.config import ConfigError
from unified_latents.diffusion.elbo import diffusion_loss, terminal_kl
from unified_latents.diffusion.process import Prediction, diffuse
from unified_latents.diffusion.schedules import LogSNRSchedule, ScheduleKind
from unified_latents.diffusion.weighting import elbo_weight, sigmoid_weight, stratified_uniform
from unified_latents.networks.conditioning import ConditionConfig, drop_condition
from unified_latents.networks.denoiser import Denoiser, Parameterization
from unified_latents.networks.registry import build_prior
from unified_latents.networks.video import SpaceTimeAttention
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
    # Video latents only (module docstring): latent frames given as context (0 = unconditional
    # clips), how often they are dropped for guidance, and the space-time attention.
    context_frames: int = 0
    context_dropout: float = 0.1
    attention: SpaceTimeAttention = "factorised"

    def __post_init__(self) -> None:
        if self.context_frames < 0 or not 0.0 <= self.context_dropout < 1.0:
            raise ValueError(
                "need base.context_frames ≥ 0 and base.context_dropout in [0, 1), got "
                f"{self.context_frames}, {self.context_dropout}"
            )
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


class FrameContext(nn.Module):
    """A video network over [z_t ; context] channels whose condition is the context tensor
    [B, c + 1, T', h, w] (`LatentDiffusion.frame_context`; None = no context): returns the
    network's first c output channels."""

    def __init__(self, network: nn.Module, channels: int) -> None:
        super().__init__()
        self.network, self.channels = network, channels

    def forward(self, z_t: Tensor, logsnr: Tensor, context: Tensor | None = None) -> Tensor:
        if context is None:
            shape = (z_t.shape[0], self.channels + 1, *z_t.shape[2:])
            context = torch.zeros(shape, device=z_t.device, dtype=z_t.dtype)
        output = self.network(torch.cat([z_t, context.to(z_t.dtype)], dim=1), logsnr)
        return output[:, : self.channels]


class LatentDiffusion(nn.Module):
    """The stage-2 base model over latents [c, h, w] (or clips [c, T', h, w]), with its loss as
    `forward`."""

    latent_mean: Tensor  # buffers, only with latent_normalization="scalar"
    latent_std: Tensor

    def __init__(
        self,
        config: BaseModelConfig,
        latent_shape: tuple[int, ...],
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
        channels, size = latent_shape[0], latent_shape[-1]
        frames = latent_shape[1] if len(latent_shape) == 4 else 0
        self.context_frames = config.context_frames
        if self.context_frames and not (
            self.context_frames < frames and config.condition.kind == "none"
        ):
            raise ConfigError(
                f"base.context_frames={self.context_frames} needs video latents of more latent "
                f"frames (these have {frames}) and base.condition.kind=none"
            )
        network = build_prior(
            config.network_kind,
            config.network,
            channels=2 * channels + 1 if self.context_frames else channels,
            size=size,
            condition=config.condition,
            **({"frames": frames, "attention": config.attention} if frames else {}),
        )
        if self.context_frames:
            network = FrameContext(network, channels)
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

    def context_mask(self, like: Tensor) -> Tensor:
        """1 on the context latent frames, 0 elsewhere: [1, 1, T', 1, 1] in `like`'s dtype."""
        mask = torch.zeros(1, 1, like.shape[2], 1, 1, device=like.device, dtype=like.dtype)
        mask[:, :, : self.context_frames] = 1.0
        return mask

    def frame_context(self, z: Tensor, normalized: bool = False) -> Tensor:
        """The condition of frame prediction from latents whose first `context_frames` frames
        are the context (autoencoder units unless `normalized`): [B, c + 1, T', h, w]."""
        z = z if normalized else self.normalize(z)
        mask = self.context_mask(z)
        return torch.cat([z * mask, mask.expand(z.shape[0], 1, *z.shape[2:])], dim=1)

    def paste_context(self, z_hat: Tensor, context: Tensor) -> Tensor:
        """A sample (autoencoder units) with its context frames set to the given context's."""
        given = self.denormalize(context[:, :-1])
        mask = self.context_mask(z_hat)
        return z_hat * (1.0 - mask) + given * mask

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
        if self.context_frames:  # the condition is the clip's own first frames
            cond = self.frame_context(z_clean, normalized=True)
            if drop_labels and self.config.context_dropout > 0:
                keep = torch.rand(z_clean.shape[0], generator=generator, device=z_clean.device)
                kept = (keep >= self.config.context_dropout).to(cond.dtype)
                cond = cond * kept.view(-1, 1, 1, 1, 1)
        elif drop_labels and cond is not None and self.config.label_dropout > 0:
            cond = drop_condition(cond, self.config.condition, self.config.label_dropout, generator)
        t = stratified_uniform(z_clean.shape[0], generator=generator, device=z_clean.device)
        logsnr = schedule.logsnr(t)
        dlogsnr_dt = schedule.dlogsnr_dt(t)
        eps = torch.randn(z_clean.shape, generator=generator, device=z_clean.device)
        eps_hat = self.denoise(diffuse(z_clean, logsnr, eps), logsnr, cond).eps_hat
        predicted = z_clean
        if self.context_frames:  # no loss on the given frames
            eps_hat = torch.where(self.context_mask(eps) > 0, eps, eps_hat)
            predicted = z_clean[:, :, self.context_frames :]
        weighted = diffusion_loss(
            eps, eps_hat, dlogsnr_dt, sigmoid_weight(logsnr, self.config.bias)
        )
        unweighted = diffusion_loss(eps, eps_hat.detach(), dlogsnr_dt, elbo_weight(logsnr))
        terminal = terminal_kl(predicted, schedule.logsnr_min)
        return BaseTerms(
            loss=weighted,
            weighted_nats=weighted,
            elbo_nats=unweighted + terminal,
            terminal_nats=terminal,
        )
