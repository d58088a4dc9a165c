"""Held-out measurements of a stage-1 model (UL-SPEC §5–§7): the rate of its latents in bits and
PSNR/SSIM of its reconstructions. Used during training (`runs/`) and by `ul evaluate`."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import torch
from torch import Tensor
from tqdm.auto import tqdm

from unified_latents.data.datasets import to_model_range, to_uint8
from unified_latents.diffusion.elbo import nats_to_bits
from unified_latents.metrics.image_quality import psnr, ssim
from unified_latents.objectives.autoencoder import Autoencoder
from unified_latents.objectives.unified_latents import UnifiedLatents
from unified_latents.sampling.samplers import SamplerKind

# Terms whose nats become bits in reports: `rate_nats` (by contract the latent's bits under the
# model's own prior) as bits_*; a KL to N(0, I) that is no such rate (kl-vae) only as kl_bits_*.
BITS_TERMS = {"rate_nats": "", "kl_nats": "kl_"}


def bits_report(
    means: Mapping[str, float], pixels: int, latent_dims: int, frames: int = 0
) -> dict[str, float]:
    """bits per image, per pixel (÷ H·W; ÷ T·H·W for clips) and per latent dimension of each
    term that has them; for clips (`frames` > 0) also per frame (bits per image = per clip)."""
    report: dict[str, float] = {}
    for term, prefix in BITS_TERMS.items():
        if term in means:
            bits = float(nats_to_bits(means[term]))
            report[f"{prefix}bits_per_image"] = bits
            if frames:
                report[f"{prefix}bits_per_frame"] = bits / frames
            report[f"{prefix}bits_per_pixel"] = bits / pixels
            report[f"{prefix}bits_per_latent_dim"] = bits / latent_dims
    return report


def rate_statistics(
    model: Autoencoder, images: Tensor, passes: int, batch_size: int, seed: int
) -> dict[str, float]:
    """Held-out means of the model's named loss terms over `passes` noise draws, and the bits
    that apply to its kind (`bits_report`): the prior's bound for UL, a KL for kl-vae."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    values: dict[str, list[Tensor]] = {}
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            x = to_model_range(images[start : start + batch_size]).to(device)
            for _ in range(passes):
                terms = model(x, generator)
                for term in dataclasses.fields(terms):
                    values.setdefault(term.name, []).append(getattr(terms, term.name))
    means = {name: torch.cat(parts).mean().item() for name, parts in values.items()}
    del means["loss"]
    pixels = math.prod(images.shape[2:])  # H·W, or T·H·W of a clip
    frames = images.shape[2] if images.dim() == 5 else 0
    return means | bits_report(means, pixels, math.prod(model.latent_shape), frames)


def reconstruction_statistics(
    model: Autoencoder,
    images: Tensor,
    *,
    num_steps: int,
    sampler: SamplerKind,
    batch_size: int,
    seed: int,
    progress: bool = False,
) -> tuple[dict[str, float], Tensor]:
    """PSNR/SSIM (dB / unitless, on [−1, 1] data) of decoder reconstructions, and the images."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    outputs = []
    bar = tqdm(total=images.shape[0], desc="reconstruct", unit="img", disable=not progress)
    for start in range(0, images.shape[0], batch_size):
        x = to_model_range(images[start : start + batch_size]).to(device)
        outputs.append(
            model.reconstruct(x, num_steps=num_steps, sampler=sampler, generator=generator).cpu()
        )
        bar.update(x.shape[0])
    bar.close()
    reconstructions = to_uint8(torch.cat(outputs))
    originals = to_model_range(images)
    quantised = to_model_range(reconstructions)
    stats = {
        "psnr_db": psnr(quantised, originals).mean().item(),
        "ssim": ssim(quantised, originals).mean().item(),
    }
    return stats, reconstructions


@torch.no_grad()
def encode_images(
    autoencoder: UnifiedLatents, images: Tensor, batch_size: int, device: torch.device
) -> Tensor:
    """z_clean [N, c, h, w] of uint8 images, on the CPU."""
    latents = [
        autoencoder.encode(to_model_range(images[start : start + batch_size]).to(device)).cpu()
        for start in range(0, images.shape[0], batch_size)
    ]
    return torch.cat(latents)
