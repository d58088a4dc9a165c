"""Stage 2: the base diffusion model on frozen UL latents (UL-SPEC §8).

    L_base = ½·(−λ')·sigmoid(b_base − λ)·Σ(ε − ε̂(z_t, λ, cond))²,  λ ∈ [λ_z(1), λ_0], target z_clean

λ_max is the autoencoder's λ_0, read from its checkpoint, never re-typed. The same forward pass
also yields the *unweighted* ELBO (w ≡ 1, plus the terminal KL): the base model's bound on the
latent's bits, Table 5's "latent bpd (base model)".
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_dropout < 1.0:
            raise ValueError(f"label_dropout must be in [0, 1), got {self.label_dropout}")


@dataclass(frozen=True)
class BaseTerms(LossTerms):
    """Per-example [B] terms in nats."""

    weighted_nats: Tensor  # the sigmoid-weighted training loss (== loss)
    elbo_nats: Tensor  # unweighted diffusion ELBO + terminal KL: bound on the latent's bits
    terminal_nats: Tensor


class LatentDiffusion(nn.Module):
    """The stage-2 base model over latents [c, h, w], with its loss as `forward`."""

    def __init__(
        self,
        config: BaseModelConfig,
        latent_shape: tuple[int, int, int],
        logsnr_max: float,
    ) -> None:
        super().__init__()
        self.config = config
        self.latent_shape = latent_shape
        self.logsnr_max = logsnr_max
        channels, size, _ = latent_shape
        network = build_prior(
            config.network_kind,
            config.network,
            channels=channels,
            size=size,
            condition=config.condition,
        )
        self.denoiser = Denoiser(network, config.parameterization)
        self.schedule = LogSNRSchedule(
            kind=config.schedule, logsnr_min=config.logsnr_min, logsnr_max=logsnr_max
        )

    def denoise(self, z_t: Tensor, logsnr: Tensor, cond: Tensor | None) -> Prediction:
        return self.denoiser(z_t, logsnr, cond)

    def forward(
        self,
        z_clean: Tensor,
        cond: Tensor | None,
        generator: torch.Generator | None = None,
        drop_labels: bool = True,
    ) -> BaseTerms:
        if drop_labels and cond is not None and self.config.label_dropout > 0:
            cond = drop_condition(cond, self.config.condition, self.config.label_dropout, generator)
        t = stratified_uniform(z_clean.shape[0], generator=generator, device=z_clean.device)
        logsnr = self.schedule.logsnr(t)
        dlogsnr_dt = self.schedule.dlogsnr_dt(t)
        eps = torch.randn(z_clean.shape, generator=generator, device=z_clean.device)
        prediction = self.denoise(diffuse(z_clean, logsnr, eps), logsnr, cond)
        weighted = diffusion_loss(
            eps, prediction.eps_hat, dlogsnr_dt, sigmoid_weight(logsnr, self.config.bias)
        )
        unweighted = diffusion_loss(
            eps, prediction.eps_hat.detach(), dlogsnr_dt, elbo_weight(logsnr)
        )
        terminal = terminal_kl(z_clean, self.schedule.logsnr_min)
        return BaseTerms(
            loss=weighted,
            weighted_nats=weighted,
            elbo_nats=unweighted + terminal,
            terminal_nats=terminal,
        )
