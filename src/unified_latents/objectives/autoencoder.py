"""What every stage-1 model offers the stages and commands, and which one a run trains.

A stage-1 model ("autoencoder") is UL itself (`unified_latents.py`) or a baseline/ablation of the
paper's §10 (`baselines.py`, `kl_vae.py`); `ObjectiveConfig.kind` picks one through the registry
in `objectives/registry.py`. The stages use only this interface, so stage 2 (`ul encode`,
`ul train-base`, `ul sample`) runs the *same* base-model code on every kind's latents, and
pixel-space diffusion plugs in an identity "autoencoder" (`objectives/pixel_space.py`).

- `forward(x, generator, rate_weight)` → per-example named terms (`LossTerms`) for training and
  the stage-1 evaluation. A term called `rate_nats` is, by contract, the bits of the latent under
  the model's own prior (a bound for a diffusion prior, exact for N(0, I)); the evaluation turns
  only that into `bits_per_pixel` (see `runs/autoencoder.py`).
- `encode(x)` → the latent stage 2 models (and `ul encode` caches);
- `decode(z)` → an image from a latent (the base model's final clean ẑ);
- `reconstruct(x)` → encode then decode held-out images;
- `rate(z_clean, generator)` → (diffusion, terminal) nats of a latent under the model's prior, if
  it has one (`has_latent_prior`): stage 2 compares the base model's ELBO with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

import torch
from torch import Tensor, nn

from unified_latents.config import ConfigError
from unified_latents.sampling.samplers import SamplerKind

AutoencoderKind = Literal[
    "ul",  # Unified Latents (UL-SPEC §4–§7); λ_0 = 10 is just a preset of it
    "kl-vae",  # Stable-Diffusion-style KL autoencoder, deterministic conv decoder
    "ul-mse-decoder",  # diffusion prior + deterministic decoder trained with MSE
    "ul-normal-prior",  # N(0, I) prior (closed-form rate) + diffusion decoder
    "ul-stopgrad-prior",  # prior on stop-grad latents; encoder regularised by a discounted KL
]
ReconstructionLoss = Literal["l1", "l2"]


@dataclass(frozen=True, kw_only=True)
class ObjectiveConfig:
    """Which stage-1 objective a run trains, and the knobs only the baselines have. Everything
    UL shares with them (encoder, prior, decoder, λ_0, schedules, c_lf, b) stays in
    `UnifiedLatentsConfig`."""

    kind: AutoencoderKind = "ul"
    # kl-vae: weight of KL(q(z|x) ‖ N(0, I)) next to the reconstruction error summed over pixels
    # (LDM's "kl_weight"; its code also sums the pixel loss per image). ul-stopgrad-prior: the
    # discount on KL(q(z_0|x) ‖ N(0, I)) that regularises the encoder instead of the prior [C].
    kl_weight: float = 1e-6
    reconstruction_loss: ReconstructionLoss = "l1"  # kl-vae only; LDM uses L1
    # kl-vae only: momentum of the running latent mean/variance behind the 1/std latent scale
    # (a cumulative average over the first 1/momentum training batches, then exponential).
    scale_momentum: float = 0.01

    def __post_init__(self) -> None:
        if self.kind not in get_args(AutoencoderKind):
            choices = ", ".join(get_args(AutoencoderKind))
            raise ValueError(f"objective.kind={self.kind!r}; choose one of {choices}")
        if self.kl_weight < 0:
            raise ValueError(f"objective.kl_weight must be ≥ 0, got {self.kl_weight}")
        if self.reconstruction_loss not in get_args(ReconstructionLoss):
            raise ValueError(
                f"objective.reconstruction_loss={self.reconstruction_loss!r}; choose l1 or l2"
            )
        if not 0.0 < self.scale_momentum <= 1.0:
            raise ValueError(
                f"objective.scale_momentum must be in (0, 1], got {self.scale_momentum}"
            )


class Autoencoder(nn.Module):
    """Base class of every stage-1 model (module docstring). Subclasses set the four sizes in
    `__init__` and implement the methods below."""

    image_channels: int
    image_size: int
    latent_channels: int
    latent_size: int
    # True when `rate` can score a cached latent under the model's own prior.
    has_latent_prior: ClassVar[bool] = True
    # True when `decode` is one network evaluation: its `num_steps` and `sampler` are ignored.
    deterministic_decoder: ClassVar[bool] = False
    # True when `latent_logsnr_max` is the level of noise the latent itself carries (UL's λ_0,
    # in the units `encode` returns): a base model that normalises the latent moves it along.
    noisy_latents: ClassVar[bool] = True
    # The decoder's sampler when a reconstruction names none.
    default_sampler: ClassVar[SamplerKind] = "ancestral"

    num_frames: int = 0  # frames of a clip; 0 = images
    latent_frames: int = 0

    @property
    def image_shape(self) -> tuple[int, ...]:
        """[C, H, W] of an image, [C, T, H, W] of a clip."""
        time = (self.num_frames,) if self.num_frames else ()
        return (self.image_channels, *time, self.image_size, self.image_size)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """[c, h, w], or [c, T', h, w] for clips."""
        time = (self.latent_frames,) if self.latent_frames else ()
        return (self.latent_channels, *time, self.latent_size, self.latent_size)

    @property
    def latent_logsnr_max(self) -> float:
        """λ_max of a base model over this model's latents (UL: its λ_0, spec §8)."""
        raise NotImplementedError

    def encode(self, x: Tensor) -> Tensor:
        """The latent of images x in [−1, 1]: what stage 2 models, fp32 [B, c, h, w]."""
        raise NotImplementedError

    def decode(
        self,
        z: Tensor,
        *,
        num_steps: int,
        sampler: SamplerKind = "ancestral",
        generator: torch.Generator | None = None,
        progress: bool = False,
    ) -> Tensor:
        """Images in (about) [−1, 1] from latents in `encode`'s scale."""
        raise NotImplementedError

    @torch.no_grad()
    def reconstruct(
        self,
        x: Tensor,
        *,
        num_steps: int,
        sampler: SamplerKind | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Encode, add the encoder noise the decoder was trained with (UL: λ_0), and decode
        (with `default_sampler` unless `sampler` names one)."""
        z = self.add_encoder_noise(self.encode(x), generator)
        sampler = sampler or self.default_sampler
        return self.decode(z, num_steps=num_steps, sampler=sampler, generator=generator)

    def add_encoder_noise(self, z_clean: Tensor, generator: torch.Generator | None) -> Tensor:
        """The noisy latent the decoder is trained on (UL: z_0 at λ_0); others: `z_clean`."""
        return z_clean

    def rate(self, z_clean: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """(diffusion, terminal) nats [B] of `encode`'s latents under the model's prior."""
        raise NotImplementedError(f"{type(self).__name__} has no prior over its latents")


class OneStepDecoding:
    """For stage-1 models whose decoder is one network evaluation (the baselines' conv decoders,
    the identity of pixel space): `decode` takes the diffusion decoder's arguments and ignores
    the sampling ones. List it before `Autoencoder` (or its subclass) among the bases."""

    deterministic_decoder: ClassVar[bool] = True

    def decode_once(self, z: Tensor) -> Tensor:
        """x̂ = D(z) in (about) [−1, 1] for a latent in `encode`'s scale."""
        raise NotImplementedError

    @torch.no_grad()
    def decode(
        self,
        z: Tensor,
        *,
        num_steps: int = 0,
        sampler: SamplerKind = "ancestral",
        generator: torch.Generator | None = None,
        progress: bool = False,
    ) -> Tensor:
        return self.decode_once(z)


def latent_size_for(encoder: nn.Module, image_size: int) -> int:
    """The latent's side length, image_size ÷ the encoder's downsampling factor; a ConfigError
    (one line on the command line) if the factor does not divide the image size."""
    factor = int(encoder.downsample_factor)  # type: ignore[arg-type]
    if image_size % factor:
        raise ConfigError(
            f"image size {image_size} is not divisible by the encoder's downsampling "
            f"factor {factor}; change data.image_size or model.encoder.channels/patch_size"
        )
    return image_size // factor
