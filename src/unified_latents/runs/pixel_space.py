"""The settings of pixel-space diffusion runs (`BaseRunConfig.pixel`; the task is in
`runs/pixel_model.py`): the base model trained directly on a dataset's images, no autoencoder."""

from __future__ import annotations

from dataclasses import dataclass, field

from unified_latents.data.datasets import DataConfig
from unified_latents.objectives.pixel_space import PixelSpace


@dataclass(frozen=True, kw_only=True)
class PixelSpaceConfig:
    data: DataConfig = field(default_factory=DataConfig)  # images in [−1, 1] are the "latents"
    # λ_max of the base model on pixels [C]: the top of UL's decoder pixel schedule
    # (pixel_logsnr_max = 15), so pixel diffusion denoises as far as UL's decoder does. The
    # bottom is `model.logsnr_min` (−15), as for latents.
    logsnr_max: float = 15.0

    def identity(self) -> PixelSpace:
        """The identity "autoencoder" on this dataset's images."""
        return PixelSpace(self.data.channels, self.data.image_size, self.logsnr_max)
