"""What `ul evaluate` measures on a trained autoencoder (UL-SPEC §5–§7, §10): rFID@N and rKID@N of
N reconstructions against the *same N held-out originals* (the first N images of the test split),
PSNR/SSIM of those reconstructions, the prior's rate bound (bits/image, bits/pixel = ÷H·W,
bits/latent-dim) and FLOPs per image (training = 3 × forward, spec §10; `evaluation/compute.py`).
For video runs the images are clips: rFVD@N replaces rFID@N, bits/pixel is ÷T·H·W and
bits/frame is reported too.
"""

from __future__ import annotations

import time
from typing import Protocol

from torch import Tensor

from unified_latents.data.datasets import DataConfig
from unified_latents.evaluation.compute import autoencoder_flops
from unified_latents.evaluation.fid import Evaluation, RealImages, inception_distances, real_images
from unified_latents.evaluation.reconstruction import rate_statistics, reconstruction_statistics
from unified_latents.evaluation.run import EvaluateOptions
from unified_latents.evaluation.video import video_distance
from unified_latents.objectives.autoencoder import Autoencoder
from unified_latents.sampling.samplers import SamplerKind
from unified_latents.visualize import interleave


class RateSettings(Protocol):
    """The held-out settings of an autoencoder run's config (`AutoencoderEvalConfig`)."""

    @property
    def num_images(self) -> int: ...  # at least this many images for the rate
    @property
    def rate_passes(self) -> int: ...  # noise draws per image
    @property
    def batch_size(self) -> int: ...


def evaluate_autoencoder(
    model: Autoencoder,
    data: DataConfig,
    settings: RateSettings,
    *,
    decoder_steps: int,
    sampler: SamplerKind,
    options: EvaluateOptions,
) -> Evaluation:
    """Rate, PSNR/SSIM and (with an extractor) rFID/rKID on the first `options.num` test images."""
    num = options.num
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    # The rate is cheap (no sampling): estimate it on at least the training-time eval set.
    test, _ = real_images(data, "test", max(num, settings.num_images))
    passes, seed = settings.rate_passes, options.seed
    rate = rate_statistics(model, test.images, passes, settings.batch_size, seed)
    seconds["rate"] = time.perf_counter() - start
    originals = RealImages(data, "test", test.images[:num])
    decoding = f"{decoder_steps} {sampler} decoder steps"
    if model.deterministic_decoder:
        decoding = "deterministic decoder"
    metrics, notes, quality_seconds, reconstructions = reconstruction_quality(
        model,
        originals,
        decoding,
        num_steps=decoder_steps,
        sampler=sampler,
        batch_size=settings.batch_size,
        options=options,
    )
    metrics |= rate | {"rate_num_images": float(test.images.shape[0])}
    draws = f"on {test.describe()} ({settings.rate_passes} noise draws each), bits/image ÷ H·W"
    rate_notes = {
        "bits_per_pixel": f"the latent's bits under the model's prior (UL: bound L_z) {draws}",
        "kl_bits_per_pixel": f"KL(q(z|x) ‖ N(0, I)), not a rate bound, {draws}",
    }
    notes |= {name: text for name, text in rate_notes.items() if name in metrics}
    seconds |= quality_seconds
    start = time.perf_counter()
    flops = autoencoder_flops(model, decoder_steps=decoder_steps, sampler=sampler)
    seconds["flop_count"] = time.perf_counter() - start
    images = originals.images
    return Evaluation(
        metrics=metrics,
        flops=flops,
        seconds=seconds,
        notes=notes,
        grid=comparison(images, reconstructions),
        grid_columns=8 if images.dim() == 4 else 1,
        grid_name="reconstructions",
    )


def comparison(originals: Tensor, reconstructions: Tensor) -> Tensor:
    """The picture's rows: 8-image rows of originals then their reconstructions; for clips,
    each clip then its reconstruction (8 pairs, a filmstrip row each)."""
    if originals.dim() == 5:
        return interleave(originals[:8], reconstructions[:8], num_columns=1)
    return interleave(originals[:32], reconstructions[:32])


def reconstruction_quality(
    model: Autoencoder,
    originals: RealImages,
    decoding: str,
    *,
    num_steps: int,
    sampler: SamplerKind,
    batch_size: int,
    options: EvaluateOptions,
    seconds_prefix: str = "",
) -> tuple[dict[str, float], dict[str, str], dict[str, float], Tensor]:
    """PSNR/SSIM and (with an extractor) rFID@N/rKID@N of reconstructions of `originals`
    (`decoding` says how they were decoded, for the notes). Returns (metrics, notes, seconds,
    the uint8 reconstructions); the FID timings are named with `seconds_prefix`."""
    seed, extractor, progress = options.seed, options.extractor, options.progress
    start = time.perf_counter()
    metrics, reconstructions = reconstruction_statistics(
        model,
        originals.images,
        num_steps=num_steps,
        sampler=sampler,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
    )
    count = originals.images.shape[0]
    seconds = {"reconstruction": time.perf_counter() - start}
    seconds["reconstruction_per_image"] = seconds["reconstruction"] / max(count, 1)
    metrics["num_images"] = float(count)
    notes = {
        "psnr_db": f"{count} reconstructions ({decoding}) vs their originals, on "
        "uint8-quantised images"
    }
    if extractor is not None and reconstructions.dim() == 5:  # clips: rFVD instead of rFID
        device = next(model.parameters()).device
        fvd = video_distance("r", reconstructions, originals.images, device, progress)
        metrics |= fvd[0]
        notes |= {name: f"reconstructions vs originals: {text}" for name, text in fvd[1].items()}
        seconds |= fvd[2]
    elif extractor is not None:
        fid, fid_notes, fid_seconds = inception_distances(
            "r",
            reconstructions,
            originals,
            extractor,
            cache_dir=options.cache_dir,
            seed=seed,
            progress=progress,
        )
        metrics |= fid
        notes |= {name: f"reconstructions vs {text}" for name, text in fid_notes.items()}
        seconds |= {f"{seconds_prefix}{name}": value for name, value in fid_seconds.items()}
    return metrics, notes, seconds, reconstructions
