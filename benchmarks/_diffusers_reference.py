"""The diffusers baseline of `throughput.py`: what a user would otherwise train.

Stage 1: an `AutoencoderKL` reconstruction step (mean L1 + 1e-6 · KL: the LDM recipe without its
adversarial and perceptual terms). Stage 2: a class-conditional `UNet2DModel` trained with the
ε-MSE loss on latents of the frozen `AutoencoderKL` (encoded once, as our stage 2 uses a latent
cache), with 10% label dropout to a null class for classifier-free guidance; sampled with
`DDPMScheduler` and guidance in one batched call per step.

Every model is built from a config with random weights: nothing is downloaded. The widths are
chosen so that forward FLOPs per image (counted by the project's counter) are closest to ours.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

try:
    import diffusers
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DModel
except ImportError as error:  # an optional extra: say how to get it
    raise SystemExit(
        "benchmarks/throughput.py compares with diffusers: pip install -e '.[bench]'"
    ) from error

from unified_latents.data.datasets import to_model_range
from unified_latents.metrics.flops import forward_flops_per_example

DIFFUSERS_VERSION: str = diffusers.__version__
NUM_TRAIN_TIMESTEPS = 1000
KL_WEIGHT = 1e-6
LABEL_DROPOUT = 0.1
# Widths are multiples of the GroupNorm group count (and, in the UNet, of the attention head size);
# the AutoencoderKL's mid-block attention has one head, so its widths can be finer.
VAE_WIDTH_STEP = 4
UNET_WIDTH_STEP = 8


@dataclass(frozen=True)
class Geometry:
    """What the diffusers models must match on our side."""

    image_channels: int
    image_size: int
    latent_channels: int
    latent_size: int
    num_classes: int


# The builders return Any: diffusers' models are nn.Modules, but mypy does not see them as such.
def build_vae(geometry: Geometry, width: int) -> Any:
    """An AutoencoderKL with our downsampling factor (2^(blocks − 1)) and latent channels."""
    levels = int(math.log2(geometry.image_size // geometry.latent_size)) + 1
    return AutoencoderKL(
        in_channels=geometry.image_channels,
        out_channels=geometry.image_channels,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=(width, *[2 * width] * (levels - 1)),
        layers_per_block=1,
        latent_channels=geometry.latent_channels,
        norm_num_groups=VAE_WIDTH_STEP,
        sample_size=geometry.image_size,
    )


def build_unet(geometry: Geometry, width: int) -> Any:
    """A two-level class-conditional UNet2DModel on the latent grid; class `num_classes` is the
    null condition for guidance."""
    return UNet2DModel(
        sample_size=geometry.latent_size,
        in_channels=geometry.latent_channels,
        out_channels=geometry.latent_channels,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(width, 2 * width),
        layers_per_block=2,
        attention_head_dim=UNET_WIDTH_STEP,
        norm_num_groups=UNET_WIDTH_STEP,
        num_class_embeds=geometry.num_classes + 1,
    )


class VAEReconstruction(nn.Module):
    """AutoencoderKL encode → posterior sample → decode as one `forward`, so torch.compile sees
    the whole step (compiling the AutoencoderKL alone would leave `encode`/`decode` eager)."""

    def __init__(self, vae: Any) -> None:  # AutoencoderKL
        super().__init__()
        self.vae = vae

    def forward(self, x: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        posterior = self.vae.encode(x).latent_dist
        reconstruction = self.vae.decode(posterior.sample(generator=generator)).sample
        return reconstruction, posterior.kl()  # [B, C, H, W], [B]


class VAEDecode(nn.Module):
    def __init__(self, vae: Any) -> None:  # AutoencoderKL
        super().__init__()
        self.vae = vae

    def forward(self, z: Tensor) -> Tensor:
        return self.vae.decode(z).sample


def vae_flops_per_image(geometry: Geometry, width: int) -> float:
    """Forward FLOPs of one reconstruction (encode + decode) per image."""
    model = VAEReconstruction(build_vae(geometry, width))
    x = torch.zeros(2, geometry.image_channels, geometry.image_size, geometry.image_size)
    return forward_flops_per_example(model, x, None)


def unet_flops_per_image(geometry: Geometry, width: int) -> float:
    """Forward FLOPs of one UNet call per latent."""
    model = build_unet(geometry, width)
    size = geometry.latent_size
    z = torch.zeros(2, geometry.latent_channels, size, size)
    labels = torch.zeros(2, dtype=torch.long)
    return forward_flops_per_example(model, z, torch.zeros(2), class_labels=labels)


def matched_width(
    flops_at: Callable[[int], float], target_per_image: float, step: int, start: int = 32
) -> tuple[int, float]:
    """The width (a multiple of `step`) whose forward FLOPs per image are closest to the target.
    Conv and linear FLOPs grow as width², so one count predicts the width; its neighbours are
    counted too and the closest (in log ratio) wins."""
    guess = start * math.sqrt(target_per_image / flops_at(start))
    centre = max(step, step * round(guess / step))
    candidates = {w: flops_at(w) for w in (centre - step, centre, centre + step) if w > 0}
    best = min(candidates, key=lambda w: abs(math.log(candidates[w] / target_per_image)))
    return best, candidates[best]


@dataclass
class DiffusersStage1:
    """AutoencoderKL reconstruction training (our stage-1 counterpart)."""

    model: nn.Module  # VAEReconstruction
    geometry: Geometry
    batches: Iterator[tuple[Tensor, Tensor]]
    generator: torch.Generator

    def loss(self, module: nn.Module, step: int) -> Tensor:
        images, _ = next(self.batches)
        x = to_model_range(images).to(self.generator.device)
        reconstruction, kl = module(x, self.generator)
        return (reconstruction.float() - x).abs().mean() + KL_WEIGHT * kl.float().mean()

    def sampler(self, compiled: bool, num: int, steps: int) -> tuple[Callable[[], object], int]:
        """VAE decoding is one deterministic network call per image whatever `steps` is."""
        assert isinstance(self.model, VAEReconstruction)
        decode: nn.Module = VAEDecode(self.model.vae)
        if compiled:
            decode = cast(nn.Module, torch.compile(decode))
        size = self.geometry.latent_size
        shape = (num, self.geometry.latent_channels, size, size)
        z = torch.randn(shape, generator=self.generator, device=self.generator.device)
        return (lambda: decode(z)), 1


def stage1(
    geometry: Geometry,
    width: int,
    batches: Iterator[tuple[Tensor, Tensor]],
    generator: torch.Generator,
) -> DiffusersStage1:
    model = VAEReconstruction(build_vae(geometry, width)).to(generator.device)
    return DiffusersStage1(model, geometry, batches, generator)


@dataclass
class DiffusersStage2:
    """UNet2DModel ε-MSE training on frozen AutoencoderKL latents (our stage-2 counterpart)."""

    model: nn.Module  # UNet2DModel
    batch_size: int
    latents: Tensor  # [N, c, h, w], scaled by the VAE's scaling_factor
    labels: Tensor  # [N]
    num_classes: int
    generator: torch.Generator
    guidance: float

    def __post_init__(self) -> None:
        self.scheduler: Any = DDPMScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS)

    def loss(self, module: nn.Module, step: int) -> Tensor:
        device = self.generator.device
        count = self.latents.shape[0]
        index = torch.randint(0, count, (self.batch_size,), generator=self.generator, device=device)
        z_0, labels = self.latents[index], self.labels[index]
        drop = torch.rand(labels.shape, generator=self.generator, device=device) < LABEL_DROPOUT
        labels = torch.where(drop, torch.full_like(labels, self.num_classes), labels)
        noise = torch.randn(z_0.shape, generator=self.generator, device=device)
        timesteps = torch.randint(
            0, NUM_TRAIN_TIMESTEPS, labels.shape, generator=self.generator, device=device
        )
        z_t = self.scheduler.add_noise(z_0, noise, timesteps)
        eps_hat = module(z_t, timesteps, class_labels=labels).sample
        return F.mse_loss(eps_hat.float(), noise)

    def sampler(self, compiled: bool, num: int, steps: int) -> tuple[Callable[[], object], int]:
        """DDPM ancestral sampling with our preset's guidance, conditional and null rows in one
        batched call per step: `steps` calls."""
        unet = cast(nn.Module, torch.compile(self.model)) if compiled else self.model
        device = self.generator.device
        labels = torch.arange(num, device=device) % self.num_classes
        both = torch.cat([labels, torch.full_like(labels, self.num_classes)])
        scheduler: Any = DDPMScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS)
        scheduler.set_timesteps(steps)

        def run() -> Tensor:
            shape = (num, *self.latents.shape[1:])
            z = torch.randn(shape, generator=self.generator, device=device)
            for t in scheduler.timesteps:
                eps_c, eps_u = unet(torch.cat([z, z]), t, class_labels=both).sample.chunk(2)
                eps = eps_u.float() + self.guidance * (eps_c.float() - eps_u.float())
                z = scheduler.step(eps, t, z, generator=self.generator).prev_sample
            return z

        return run, steps


@torch.no_grad()
def stage2(
    geometry: Geometry,
    unet_width: int,
    vae_width: int,
    batch_size: int,
    batches: Iterator[tuple[Tensor, Tensor]],
    generator: torch.Generator,
    guidance: float,
    pool_batches: int = 4,
) -> DiffusersStage2:
    """Encodes `pool_batches` batches of images with a frozen AutoencoderKL once, then trains the
    UNet on random draws from that latent pool."""
    device = generator.device
    vae: Any = build_vae(geometry, vae_width).to(device).eval().requires_grad_(False)
    latents, labels = [], []
    for _ in range(pool_batches):
        images, batch_labels = next(batches)
        posterior = vae.encode(to_model_range(images).to(device)).latent_dist
        latents.append(posterior.sample(generator=generator) * vae.config.scaling_factor)
        labels.append(batch_labels.to(device))
    unet: Any = build_unet(geometry, unet_width)
    return DiffusersStage2(
        unet.to(device),
        batch_size,
        torch.cat(latents),
        torch.cat(labels),
        geometry.num_classes,
        generator,
        guidance,
    )
