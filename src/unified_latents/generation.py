"""Sampling images from a trained base model and its autoencoder (UL-SPEC §8)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal, Protocol

import torch
from torch import Tensor
from tqdm.auto import tqdm

from unified_latents.conditions import ConditionError, ConditionSource
from unified_latents.config import check_at_least
from unified_latents.data.containers import derived_seed
from unified_latents.data.datasets import to_model_range, to_uint8
from unified_latents.objectives.autoencoder import Autoencoder
from unified_latents.objectives.latent_diffusion import LatentDiffusion
from unified_latents.sampling.pipeline import sample_latents
from unified_latents.sampling.samplers import SamplerKind

# What the decoder gets from the base model's sample (UL-SPEC §8 note [D]): "clean" is the final
# clean estimate ẑ, as the paper samples; "noisy" is α_0·ẑ + σ_0·ε, an input like the z_0 the
# decoder was trained on (the same as "clean" for latents without encoder noise, e.g. kl-vae).
DecoderInput = Literal["clean", "noisy"]


class SamplingSettings(Protocol):
    @property
    def base_steps(self) -> int: ...
    @property
    def decoder_steps(self) -> int: ...
    @property
    def sampler(self) -> SamplerKind: ...
    @property
    def guidance(self) -> float: ...
    @property
    def guidance_interval(self) -> tuple[float, float] | None: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def decoder_input(self) -> DecoderInput: ...
    @property
    def decoder_sampler(self) -> SamplerKind | None: ...
    @property
    def decoder_samples(self) -> int: ...


@dataclass(frozen=True, kw_only=True)
class SamplingConfig:
    """The sampling settings of a run that generates (the `eval` group of base-model, pixel and
    end-to-end configs, which add their held-out settings to it)."""

    samples_per_class: int = 4  # grid during training (unconditional: 4 × 10 samples)
    base_steps: int = 64
    decoder_steps: int = 32
    sampler: SamplerKind = "ancestral"
    guidance: float = 2.0
    guidance_interval: tuple[float, float] | None = None
    decoder_input: DecoderInput = "clean"  # or "noisy": α_0·ẑ + σ_0·ε (see generate_images)
    decoder_sampler: SamplerKind | None = None  # None: `sampler` for the decoder too
    # K > 1: each image is the mean of K decoder samples of the same ẑ (a Monte-Carlo estimate of
    # E[x | ẑ], the posterior-mean decoding), K times the decoder cost; 1: one sample, as the paper
    decoder_samples: int = 1
    batch_size: int = 250
    seed: int = 1234

    def __post_init__(self) -> None:
        names = ("samples_per_class", "base_steps", "decoder_steps", "decoder_samples")
        check_at_least(self, 1, *names, "batch_size")


@torch.no_grad()
def generate_images(
    base: LatentDiffusion,
    autoencoder: Autoencoder,
    cond: Tensor | None,
    conditions: ConditionSource,
    settings: SamplingSettings,
    *,
    num: int,
    generator: torch.Generator,
) -> Tensor:
    """`num` images in [−1, 1]: base model (with guidance) → ẑ → decoder. `cond` has `num`
    rows, or is None for an unconditional model. ẑ is in the autoencoder's latent units (the
    base model undoes its normalisation); `settings.decoder_input` says what the decoder gets."""
    device = next(base.parameters()).device
    outputs = []
    for start in range(0, num, settings.batch_size):
        count = min(settings.batch_size, num - start)
        batch_cond = None if cond is None else cond[start : start + count].to(device)
        null = conditions.null(count, device)
        if base.context_frames and batch_cond is not None:  # frame prediction: no context
            null = torch.zeros_like(batch_cond)
        z_hat = sample_latents(
            base.denoise,
            latent_shape=base.latent_shape,
            schedule=base.schedule,
            cond=batch_cond,
            null_cond=null,
            num=count,
            guidance=settings.guidance,
            guidance_interval=settings.guidance_interval,
            num_steps=settings.base_steps,
            sampler=settings.sampler,
            generator=generator,
            device=device,
        )
        z_hat = base.denormalize(z_hat)
        if base.context_frames and batch_cond is not None:  # the given frames, exactly
            z_hat = base.paste_context(z_hat, batch_cond)
        outputs.append(decode_latents(autoencoder, z_hat, settings, generator).cpu())
    return torch.cat(outputs)


def decode_latents(
    autoencoder: Autoencoder, z_hat: Tensor, settings: SamplingSettings, generator: torch.Generator
) -> Tensor:
    """Images in [−1, 1] from the base model's ẑ: one decoder sample, or the mean of
    `settings.decoder_samples` samples (each with its own encoder noise where the decoder input
    is "noisy")."""

    def one_sample() -> Tensor:
        z = z_hat
        if settings.decoder_input == "noisy":
            z = autoencoder.add_encoder_noise(z_hat, generator)
        return autoencoder.decode(
            z,
            num_steps=settings.decoder_steps,
            sampler=settings.decoder_sampler or settings.sampler,
            generator=generator,
        )

    images = one_sample()
    for _ in range(settings.decoder_samples - 1):
        images = images + one_sample()
    return images / settings.decoder_samples


@torch.no_grad()
def context_condition(
    base: LatentDiffusion, autoencoder: Autoencoder, clips: Tensor, batch_size: int
) -> Tensor:
    """Frame prediction: the condition (on the CPU) that continues uint8 `clips` from their
    first frames: their latents' first `base.context_frames` frames (`frame_context`)."""
    device = next(base.parameters()).device
    parts = [
        base.frame_context(autoencoder.encode(to_model_range(clips[i : i + batch_size]).to(device)))
        for i in range(0, clips.shape[0], batch_size)
    ]
    return torch.cat(parts).cpu()


def keep_context(base: LatentDiffusion, samples: Tensor, clips: Tensor) -> Tensor:
    """Continuations (uint8) with the given pixel frames of `clips` put back as they were (the
    decoder rebuilt them from their latents), as frame-prediction protocols score them."""
    shown = context_frames(base, samples)
    kept = samples.clone()
    kept[:, :, :shown] = clips[:, :, :shown]
    return kept


def context_frames(base: LatentDiffusion, images: Tensor) -> int:
    """Pixel frames a frame-prediction model was given (its latent context frames × the
    autoencoder's frames per latent frame), 0 for other models; `images` are its samples."""
    if not base.context_frames:
        return 0
    return base.context_frames * images.shape[2] // base.latent_shape[1]


def sample_chunks(
    base: LatentDiffusion,
    autoencoder: Autoencoder,
    cond: Tensor | None,
    conditions: ConditionSource,
    settings: SamplingSettings,
    *,
    num: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
) -> dict[int, Tensor]:
    """This rank's chunks of `num` samples: chunk k holds samples [k·B, (k+1)·B) with
    B = `settings.batch_size`, is drawn with its own generator seeded from (seed, k), and rank r
    makes chunks r, r + W, r + 2W, …. Sample i is therefore the same whatever the number of
    ranks W (up to floating-point differences between devices). Returns chunk → images in
    [−1, 1] on the CPU."""
    device = next(base.parameters()).device
    chunks = {}
    for chunk in range(rank, -(-num // settings.batch_size), world_size):
        start = chunk * settings.batch_size
        count = min(settings.batch_size, num - start)
        generator = torch.Generator(device=device).manual_seed(derived_seed(seed, chunk))
        chunk_cond = None if cond is None else cond[start : start + count]
        chunks[chunk] = generate_images(
            base, autoencoder, chunk_cond, conditions, settings, num=count, generator=generator
        )
    return chunks


def sample_images(
    base: LatentDiffusion,
    autoencoder: Autoencoder,
    cond: Tensor | None,
    conditions: ConditionSource,
    settings: SamplingSettings,
    *,
    num: int,
    seed: int,
    progress: bool = True,
) -> Tensor:
    """uint8 samples [num, C, H, W], identical to `ul sample --num num --seed seed` with the
    same conditions: chunk k comes from `sample_chunks` (its own seed), one chunk at a time so a
    progress bar can follow."""
    num_chunks = -(-num // settings.batch_size)
    draw = partial(sample_chunks, base, autoencoder, cond, conditions, settings, num=num, seed=seed)
    parts = []
    with tqdm(total=num, desc="sample", unit="img", disable=not progress) as bar:
        for chunk in range(num_chunks):
            # As rank `chunk` of `num_chunks` ranks, sample_chunks draws exactly chunk `chunk`.
            (images,) = draw(rank=chunk, world_size=num_chunks).values()
            parts.append(to_uint8(images))
            bar.update(images.shape[0])
    return torch.cat(parts)


def sampling_conditions(
    conditions: ConditionSource,
    num: int,
    class_label: int | None,
    prompt: str | Sequence[str] | None,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Conditions for `num` samples and the class index each one is meant to show (−1 if none):
    one class, prompts (`num` = the total, prompts in turn), or (by default) every class in
    turn."""
    if prompt is not None:
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts:
            raise ConditionError("no prompts given")
        chosen = [prompts[i % len(prompts)] for i in range(num)]
        return conditions.encode_prompts(chosen), torch.full((num,), -1)
    if conditions.kind == "none":
        if class_label is not None:
            raise ConditionError("this base model is unconditional; drop --class")
        return None, torch.full((num,), -1)
    classes = len(conditions.class_names)
    if class_label is not None and not 0 <= class_label < classes:
        raise ConditionError(f"--class must be in [0, {classes}), got {class_label}")
    labels = (
        torch.full((num,), class_label) if class_label is not None else torch.arange(num) % classes
    )
    return conditions.for_classes(labels), labels


def evaluation_conditions(
    conditions: ConditionSource, num: int
) -> tuple[torch.Tensor | None, torch.Tensor, str]:
    """The conditions of the `num` samples `ul evaluate` draws, their class labels (−1: none)
    and a description for eval.json. A caption-conditioned model (text-to-image) gets the fixed
    captions of the first `num` held-out images, in turn: the images its samples are compared
    with; any other model every class in turn."""
    if not conditions.keyed_by_index:
        cond, labels = sampling_conditions(conditions, num, None, None)
        return cond, labels, "sample i is generated for class i mod K (balanced)"
    conditions.require_captions()
    captions = conditions.heldout_captions
    assert captions is not None
    count = len(captions)
    prompts = [captions.fixed_caption(i % count) for i in range(num)]
    described = f"sample i is generated for the fixed caption of held-out image i mod {count}"
    return conditions.encode_prompts(prompts), torch.full((num,), -1), described
