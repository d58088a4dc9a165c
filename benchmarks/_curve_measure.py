"""The measurements behind `flops_curve.py`, each one (arm, checkpoint, setting) → one dict.

Both FIDs use ONE reference set: Inception features of the whole Fashion-MNIST test split
(10,000 images, cached once on disk). rFID@N: reconstructions of the first N test images;
gFID@N: N class-balanced samples (sample i asks for class i mod 10). FD_cls and class accuracy
use the shipped Fashion-MNIST classifier against the same 10,000 test images.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unified_latents.data.datasets import DataConfig, to_model_range, to_uint8
from unified_latents.data.latent_cache import LatentCache
from unified_latents.diffusion.elbo import nats_to_bits
from unified_latents.evaluation.base_model import classifier_metrics
from unified_latents.evaluation.compute import base_flops, stage1_forward_flops
from unified_latents.evaluation.fid import RealImages, real_images
from unified_latents.generation import DecoderInput, sample_images, sampling_conditions
from unified_latents.metrics.frechet import (
    frechet_distance,
    frechet_distance_of_features,
    statistics_from_features,
)
from unified_latents.metrics.image_quality import psnr, psnr_from_mse, ssim
from unified_latents.metrics.inception import InceptionFeatures
from unified_latents.metrics.kid import kernel_inception_distance
from unified_latents.metrics.reference_stats import (
    cache_path,
    cached_reference_features,
    cached_reference_statistics,
)
from unified_latents.objectives.autoencoder import Autoencoder
from unified_latents.runs.kind import with_decoder
from unified_latents.runs.latents import encoded_from_step, latent_cache_dir
from unified_latents.runs.presets import autoencoder_fashion_mnist
from unified_latents.runs.registry import kind_of
from unified_latents.sampling.samplers import SamplerKind

DEVICE = torch.device("cpu")
REFERENCE_SIZE = 10_000  # the whole test split
DATA = autoencoder_fashion_mnist().data


class Reference:
    """The one reference set: test-split images, labels, Inception features and statistics."""

    def __init__(
        self, extractor: InceptionFeatures, data: DataConfig = DATA, size: int | None = None
    ) -> None:
        self.extractor = extractor
        self.real, self.labels = real_images(data, "test", size or REFERENCE_SIZE)
        key = self.real.cache_key(extractor)
        chunks = cache_path(key).with_suffix(".chunks")
        compute = lambda: chunked_features(extractor, self.real.images, chunks)  # noqa: E731
        self.features = cached_reference_features(key, compute)
        self.statistics = cached_reference_statistics(key, lambda: self.features)

    @property
    def images(self) -> RealImages:
        return self.real

    def distances(self, images: torch.Tensor, seed: int, bootstrap: int = 0) -> dict[str, Any]:
        """FID, KID (mean ± std over 100 subsets of 1,000) and, with `bootstrap` > 0, the spread
        of FID over `bootstrap` resamples (with replacement) of the generated set."""
        features = self.extractor.features(images, progress=True)
        fid = frechet_distance_of_features(features, self.features, self.statistics)
        kid = kernel_inception_distance(
            features, self.features, num_subsets=100, subset_size=1000, seed=seed
        )
        result: dict[str, Any] = {"fid": fid, "kid": kid.mean, "kid_std": kid.std}
        if bootstrap:
            rng = np.random.default_rng(seed)
            values = []
            for _ in range(bootstrap):
                rows = rng.integers(0, features.shape[0], features.shape[0])
                resampled = statistics_from_features(features[rows])
                values.append(frechet_distance(resampled, self.statistics))
            # FID is biased upwards and a resample repeats images, so the resampled values sit
            # above the estimate: the "basic" interval (2·FID − q97.5, 2·FID − q2.5) corrects
            # for that bias; the std is the error bar the plots draw.
            low, high = np.percentile(values, [2.5, 97.5])
            result |= {
                "fid_bootstrap_std": float(np.std(values)),
                "fid_bootstrap_basic_95": [float(2 * fid - high), float(2 * fid - low)],
                "fid_bootstrap_resamples": bootstrap,
            }
        return result


def chunked_features(
    extractor: InceptionFeatures, images: torch.Tensor, directory: Path, chunk: int = 500
) -> np.ndarray:
    """Inception features of many images, kept on disk `chunk` images at a time, so that a
    computation stopped by the end of a session resumes where it stopped."""
    directory.mkdir(parents=True, exist_ok=True)
    parts = []
    for start in range(0, images.shape[0], chunk):
        path = directory / f"{start:06d}-{min(start + chunk, images.shape[0]):06d}.npy"
        if not path.is_file():
            features = extractor.features(images[start : start + chunk], progress=True)
            temporary = path.with_suffix(".tmp.npy")
            np.save(temporary, features)
            os.replace(temporary, path)
        parts.append(np.load(path))
    return np.concatenate(parts)


def stage1_model(stage1_dir: Path, step: int | None = None) -> tuple[Autoencoder, int]:
    """The autoencoder checkpoint of `step`, else the one the base model's latents came from,
    else the newest. Any run that opens as an autoencoder works (e.g. a decoder distillation)."""
    step = step if step is not None else encoded_from_step(stage1_dir)
    model, _, loaded = kind_of(stage1_dir).autoencoder(stage1_dir, DEVICE, step)
    return model, int(loaded.state["training"]["step"])


@torch.no_grad()
def decode_latents(
    model: Autoencoder,
    images: torch.Tensor,
    *,
    steps: int,
    decoder_input: DecoderInput,
    seed: int,
    batch_size: int = 250,
    sampler: SamplerKind = "ancestral",
) -> torch.Tensor:
    """uint8 reconstructions: decode z_0 (the trained input) or z_clean ("clean")."""
    generator = torch.Generator(device=DEVICE).manual_seed(seed)
    outputs = []
    for start in range(0, images.shape[0], batch_size):
        x = to_model_range(images[start : start + batch_size])
        z = model.encode(x)
        if decoder_input == "noisy":
            z = model.add_encoder_noise(z, generator)
        outputs.append(model.decode(z, num_steps=steps, sampler=sampler, generator=generator))
    return to_uint8(torch.cat(outputs))


def reconstruction(
    stage1_dir: Path,
    reference: Reference,
    *,
    num: int,
    steps: int,
    decoder_input: DecoderInput,
    seed: int,
    psnr_samples: int = 0,
    sampler: SamplerKind = "ancestral",
    checkpoint: int | None = None,
) -> dict[str, Any]:
    """rFID@num, PSNR/SSIM of one decoder sample, the latent's bits (UL: the prior's bound;
    KL-VAE: its KL) and stage-1 FLOPs; with `psnr_samples` > 1 also the PSNR of the mean of
    that many decoder samples on the first 256 images (UL's MMSE-like estimate)."""
    model, step = stage1_model(stage1_dir, checkpoint)
    images = reference.real.images[:num]
    start = time.perf_counter()
    outputs = decode_latents(
        model, images, steps=steps, decoder_input=decoder_input, seed=seed, sampler=sampler
    )
    seconds_per_image = (time.perf_counter() - start) / max(num, 1)
    originals, decoded = to_model_range(images), to_model_range(outputs)
    result: dict[str, Any] = {
        "stage1_step": step,
        "num": num,
        "decoder_steps": steps,
        "decoder_input": decoder_input,
        "sampler": sampler,
        "seconds_per_image": seconds_per_image,
        "deterministic_decoder": model.deterministic_decoder,
        "psnr": psnr(decoded, originals).mean().item(),
        "psnr_of_mean_mse": psnr_from_mse(float(((decoded - originals) ** 2).mean())),
        "ssim": ssim(decoded, originals).mean().item(),
        **{f"r{key}": value for key, value in reference.distances(outputs, seed).items()},
    }
    if psnr_samples > 1 and not model.deterministic_decoder:
        subset = images[:256]
        draws = [
            to_model_range(
                decode_latents(
                    model,
                    subset,
                    steps=steps,
                    decoder_input=decoder_input,
                    seed=seed + k,
                    sampler=sampler,
                )
            )
            for k in range(psnr_samples)
        ]
        mean = torch.stack(draws).mean(dim=0)
        result["psnr_mean_of_samples"] = psnr(mean, to_model_range(subset)).mean().item()
        result["psnr_one_sample_same_images"] = psnr(draws[0], to_model_range(subset)).mean().item()
        result["psnr_samples"] = psnr_samples
    result |= latent_bits(model, images, seed)
    result["stage1_training_flops_per_image"] = 3.0 * stage1_forward_flops(model)
    return result


@torch.no_grad()
def latent_bits(model: Autoencoder, images: torch.Tensor, seed: int) -> dict[str, float]:
    """bits/pixel of the latent under the model's prior (UL) or its KL to N(0, I) (KL-VAE), on
    `images` with one noise draw each."""
    generator = torch.Generator(device=DEVICE).manual_seed(seed)
    totals: dict[str, float] = {}
    for start in range(0, images.shape[0], 250):
        terms = model(to_model_range(images[start : start + 250]), generator)
        for name in ("rate_nats", "kl_nats"):
            if hasattr(terms, name):
                totals[name] = totals.get(name, 0.0) + float(getattr(terms, name).sum())
    pixels = images.shape[-1] * images.shape[-2]
    result = {}
    if "rate_nats" in totals:
        result["bits_per_pixel"] = float(nats_to_bits(totals["rate_nats"] / images.shape[0]))
        result["bits_per_pixel"] /= pixels
    if "kl_nats" in totals:
        result["kl"] = totals["kl_nats"] / images.shape[0]  # nats per image
        result["kl_bits_per_pixel"] = float(nats_to_bits(result["kl"])) / pixels
    return result


def generation(
    base_dir: Path,
    step: int,
    reference: Reference,
    *,
    num: int,
    seed: int,
    guidance: float,
    base_steps: int,
    decoder_steps: int,
    decoder_input: DecoderInput,
    bootstrap: int = 0,
    decoder_sampler: SamplerKind | None = None,
    inception: bool = True,
    decoder: tuple[Path, int | None] | None = None,
) -> tuple[dict[str, Any], torch.Tensor]:
    """gFID@num (+ KID, FD_cls, class accuracy) of the base model's checkpoint at `step`, and
    the uint8 samples; `inception=False` leaves out gFID/KID (the Inception network is most of
    the cost of a measurement here). `decoder`: (run, checkpoint or None for the newest) whose
    decoder replaces the autoencoder's (`ul sample --decoder`), e.g. a decoder distillation."""
    models = kind_of(base_dir).generator(base_dir, DEVICE, step)
    if decoder is not None:
        source, checkpoint = decoder
        models = with_decoder(
            models, kind_of(source).autoencoder(source, DEVICE, checkpoint), source
        )
    base, autoencoder, config, conditions = models
    settings = replace(
        config.eval,
        guidance=guidance,
        base_steps=base_steps,
        decoder_steps=decoder_steps,
        decoder_input=decoder_input,
        decoder_sampler=decoder_sampler,
        batch_size=250,
    )
    cond, labels = sampling_conditions(conditions, num, None, None)
    start = time.perf_counter()
    samples = sample_images(base, autoencoder, cond, conditions, settings, num=num, seed=seed)
    seconds_per_sample = (time.perf_counter() - start) / max(num, 1)
    distances = reference.distances(samples, seed, bootstrap) if inception else {}
    result: dict[str, Any] = {
        "step": step,
        "num": num,
        "seed": seed,
        "guidance": guidance,
        "base_steps": base_steps,
        "decoder_steps": decoder_steps,
        "decoder_input": decoder_input,
        "decoder_sampler": settings.decoder_sampler,
        "seconds_per_sample": seconds_per_sample,
        **{f"g{key}": value for key, value in distances.items()},
    }
    metrics, _ = classifier_metrics(samples, labels, reference.real, reference.labels)
    result["fd_cls"] = metrics.get(f"FD_cls@{num}")
    result["class_accuracy"] = metrics.get("classifier_accuracy")
    flops = base_flops(base, autoencoder, conditions, settings)
    result["base_training_flops_per_sample"] = flops["base_training_per_sample"]
    result["sampling_flops_per_sample"] = flops["sampling_per_sample"]
    result["batch_size"] = config.train.batch_size
    if base.normalized:
        result["latent_mean"] = float(base.latent_mean)
        result["latent_std"] = float(base.latent_std)
    if getattr(config, "autoencoder_run", ""):  # latent arms (pixel runs have none)
        cache = LatentCache(latent_cache_dir(Path(config.autoencoder_run)) / "train")
        statistics = cache.statistics()
        result["raw_latent_std"] = statistics.std
        result["raw_latent_channel_std"] = statistics.channel_std
    return result, samples
