"""Single-stage (end-to-end) Unified Latents: encoder, decoder and base model trained together in
one run (UL-SPEC §9, the paper's App. B). There is no separate prior: the base model is the prior.

Both schemes share one code path. Each example gets a latent noise level λ_aug and
z_aug = α(λ_aug)·z_clean + σ(λ_aug)·ε (fresh ε); per example, in nats:

    rate       = ∫_{λ_min}^{λ_aug} ½·E‖ε − ε̂_base(z_λ, λ, c)‖² dλ + L_T   base ELBO of z_aug (w ≡ 1)
    distortion = ½(−λ')·sigmoid(b_dec − λ)·Σ(ε − ε̂_dec(x_t, z_aug, λ, λ_aug))²  (spec §6)
    loss       = rate + c_lf · distortion                                      (spec §7)

- "noise-augmented" (default; the paper's better scheme): λ_aug = clamp(logistic(b_base, 1),
  λ_min, λ_0), see `diffusion/weighting.py`. Since P(λ_aug ≥ λ) = sigmoid(b_base − λ), averaging
  the rate over λ_aug gives the base model exactly the two-stage sigmoid(b_base − λ)-weighted loss
  (spec §8) plus L_T, which does not depend on the base model.
- "shifted-decoder": λ_aug ≡ λ_0, so the rate is the base model's plain unweighted ELBO on z_0 (the
  stage-1 rate with the base model as the prior), and the decoder's bias is the lower
  `shifted_decoder_bias` (its loss moves toward noisier data).

What plays the KL role: the rate. For a given λ_aug it bounds KL(q(z_aug | x) ‖ p_base(z_aug)), so
each example's loss is a stage-1 UL objective whose encoder noise is λ_aug and whose prior is the
base model; the encoder is regularised by the base model's ELBO (App. B). For the noise-augmented
scheme that is a bound on the bits of z_aug, not of z_0: the bits we report are the base model's
full unweighted ELBO on z_0 (λ_aug = λ_0), `LatentDiffusion.forward(...).elbo_nats`.

Sampling is the two-stage path (spec §8): base model → ẑ → decoder with λ_aug = λ_0, the decoder's
default, so `self.base` and `self.autoencoder` plug into `generation.py` unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from unified_latents.diffusion.elbo import diffusion_loss, terminal_kl
from unified_latents.diffusion.process import diffuse
from unified_latents.diffusion.schedules import LogSNRSchedule
from unified_latents.diffusion.weighting import sample_truncated_logistic, stratified_uniform
from unified_latents.networks.conditioning import drop_condition
from unified_latents.networks.denoiser import Denoiser
from unified_latents.objectives.latent_diffusion import BaseModelConfig, LatentDiffusion
from unified_latents.objectives.terms import LossTerms
from unified_latents.objectives.unified_latents import UnifiedLatents, UnifiedLatentsConfig, randn
from unified_latents.sampling.pipeline import ConditionalDenoiser

Scheme = Literal["noise-augmented", "shifted-decoder"]


@dataclass(frozen=True, kw_only=True)
class SingleStageConfig:
    # Encoder, decoder, λ_0, pixel schedule, c_lf, decoder bias. Its prior fields are unused: the
    # base model is the prior (and its schedule, `base.logsnr_min`, is the latent schedule).
    autoencoder: UnifiedLatentsConfig = field(default_factory=UnifiedLatentsConfig)
    # The base model: prior during training, generator at sampling. `base.bias` is b_base, the
    # location of λ_aug's logistic (= the bias of the sigmoid weighting it reproduces).
    base: BaseModelConfig = field(default_factory=BaseModelConfig)
    shifted_decoder_bias: float = -2.0  # decoder's b in the "shifted-decoder" scheme only [C]


@dataclass(frozen=True)
class SingleStageTerms(LossTerms):
    """Per-example [B] terms; nats unless the name says otherwise."""

    rate_nats: Tensor  # base model's unweighted ELBO of z_aug (+ L_T): the KL role
    base_diffusion_nats: Tensor  # its diffusion part, λ ∈ [λ_min, λ_aug]
    base_terminal_nats: Tensor  # L_T = KL(q(z_1 | z_clean) ‖ N(0, I))
    distortion_nats: Tensor  # decoder loss given (z_aug, λ_aug), before c_lf
    logsnr_aug: Tensor  # λ_aug (λ_0 for the shifted-decoder scheme)


def restricted_elbo(
    denoise: ConditionalDenoiser,
    z_clean: Tensor,
    logsnr_aug: Tensor,
    cond: Tensor | None,
    schedule: LogSNRSchedule,
    generator: torch.Generator | None,
) -> Tensor:
    """The unweighted diffusion ELBO of z_aug, ∫_{λ_min}^{λ_aug} ½·E‖ε − ε̂‖² dλ, per example [B].

    λ ≤ λ_aug is t ∈ [t(λ_aug), 1]: draw t uniformly there (stratified over the batch) and weight
    the usual ½(−λ')Σ(ε − ε̂)² by that interval's length 1 − t(λ_aug), an unbiased estimate. The
    target is z_clean, as for the stage-1 prior (spec §5). λ_aug = λ_0 gives the full ELBO;
    λ_aug = λ_min gives 0.
    """
    t_aug = schedule.t_from_logsnr(logsnr_aug).clamp(0.0, 1.0)  # [B]
    s = stratified_uniform(z_clean.shape[0], generator=generator, device=z_clean.device)
    t = t_aug + s * (1.0 - t_aug)
    logsnr = schedule.logsnr(t)
    eps = randn(z_clean, generator)
    prediction = denoise(diffuse(z_clean, logsnr, eps), logsnr, cond)
    return diffusion_loss(eps, prediction.eps_hat, schedule.dlogsnr_dt(t), 1.0 - t_aug)


class BaseModelIsThePrior(nn.Module):
    """Stands in for the stage-1 prior inside an end-to-end model (no parameters)."""

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        raise RuntimeError("an end-to-end model has no stage-1 prior: its base model is the prior")


class SingleStageLatents(nn.Module):
    """Encoder + decoder (`autoencoder`) and base model (`base`), with the §9 loss as `forward`."""

    def __init__(
        self, config: SingleStageConfig, scheme: Scheme, image_channels: int, image_size: int
    ) -> None:
        super().__init__()
        if config.base.latent_normalization != "none":
            raise ValueError(
                "end-to-end latents change while they train, so there are no fixed statistics to "
                "normalise by: set model.base.latent_normalization=none"
            )
        if scheme not in get_args(Scheme):
            raise ValueError(f"scheme={scheme!r}; choose one of {', '.join(get_args(Scheme))}")
        self.config, self.scheme = config, scheme
        autoencoder_config = config.autoencoder
        if scheme == "shifted-decoder":
            bias = config.shifted_decoder_bias
            autoencoder_config = replace(autoencoder_config, decoder_bias=bias)
        self.autoencoder = UnifiedLatents(autoencoder_config, image_channels, image_size)
        # The stage-1 prior UnifiedLatents builds is dropped (no weights in the checkpoint).
        self.autoencoder.prior = Denoiser(BaseModelIsThePrior())
        # λ_max of the base model is the encoder noise level λ_0 (one field, spec §4).
        self.base = LatentDiffusion(
            config.base, self.autoencoder.latent_shape, autoencoder_config.logsnr_0
        )

    def sample_logsnr_aug(
        self, num: int, generator: torch.Generator | None, device: torch.device | str
    ) -> Tensor:
        """λ_aug [num]: clamped logistic(b_base, 1) on [λ_min, λ_0], or λ_0 (shifted decoder)."""
        schedule = self.base.schedule
        if self.scheme == "shifted-decoder":
            return torch.full((num,), schedule.logsnr_max, device=device)
        return sample_truncated_logistic(
            num,
            bias=self.config.base.bias,
            low=schedule.logsnr_min,
            high=schedule.logsnr_max,
            generator=generator,
            device=device,
        )

    def forward(
        self,
        x: Tensor,
        cond: Tensor | None,
        generator: torch.Generator | None = None,
        rate_weight: float = 1.0,
    ) -> SingleStageTerms:
        """Per-example loss (module docstring); gradients reach the encoder from both terms.
        `cond` is the base model's condition (label dropout is applied here); `rate_weight` < 1
        only during the optional rate warm-up (`UnifiedLatentsConfig.rate_warmup_steps`)."""
        base_config = self.config.base
        if cond is not None and base_config.label_dropout > 0:
            cond = drop_condition(cond, base_config.condition, base_config.label_dropout, generator)
        z_clean = self.autoencoder.encode(x)  # [B, c, h, w]
        logsnr_aug = self.sample_logsnr_aug(x.shape[0], generator, x.device)
        schedule = self.base.schedule
        diffusion = restricted_elbo(
            self.base.denoise, z_clean, logsnr_aug, cond, schedule, generator
        )
        terminal = terminal_kl(z_clean, schedule.logsnr_min)
        rate = diffusion + terminal
        z_aug = diffuse(z_clean, logsnr_aug, randn(z_clean, generator))
        distortion = self.autoencoder.distortion(x, z_aug, generator, z_logsnr=logsnr_aug)
        return SingleStageTerms(
            loss=rate_weight * rate + self.autoencoder.config.loss_factor * distortion,
            rate_nats=rate,
            base_diffusion_nats=diffusion,
            base_terminal_nats=terminal,
            distortion_nats=distortion,
            logsnr_aug=logsnr_aug,
        )
