"""Pixel-space diffusion as "latent diffusion with the identity autoencoder" (UL-SPEC §10 baseline).

The base model (`LatentDiffusion`, the same network family, loss and sampler as on latents) is
trained directly on images in [−1, 1]: `encode` and `decode` are the identity, so `ul sample`
skips the decoder. There is no prior over the "latent", hence no comparison bound in stage 2.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from unified_latents.objectives.autoencoder import Autoencoder, OneStepDecoding


class PixelSpace(OneStepDecoding, Autoencoder):
    """The identity on images [C, H, W]; `logsnr_max` is the base model's λ_max on pixels."""

    has_latent_prior: ClassVar[bool] = False
    noisy_latents: ClassVar[bool] = False

    def __init__(self, image_channels: int, image_size: int, logsnr_max: float) -> None:
        super().__init__()
        self.image_channels = self.latent_channels = image_channels
        self.image_size = self.latent_size = image_size
        self.logsnr_max = logsnr_max

    @property
    def latent_logsnr_max(self) -> float:
        return self.logsnr_max

    def encode(self, x: Tensor) -> Tensor:
        return x.float()

    def decode_once(self, z: Tensor) -> Tensor:
        """The base model's final clean estimate x̂ is the image: no decoder."""
        return z.float()
