"""`ul sample`: base model → latent → decoder → images, for every run kind that generates
(base-model, pixel-model and end-to-end runs; `RunKind.generator`)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from unified_latents.commands.prompts import save_captioned_grid
from unified_latents.conditions import ConditionError
from unified_latents.data.datasets import load_split, to_uint8
from unified_latents.generation import (
    context_condition,
    context_frames,
    keep_context,
    sample_chunks,
    sampling_conditions,
)
from unified_latents.runs.autoencoder import AutoencoderRunConfig
from unified_latents.runs.directory import load_run
from unified_latents.runs.kind import with_decoder
from unified_latents.runs.latents import autoencoder_dir
from unified_latents.runs.registry import kind_of
from unified_latents.training.distributed import init_distributed, resolve_device
from unified_latents.training.precision import autocast, resolve_precision
from unified_latents.visualize_video import save_pictures


def sample(
    run_dir: Path,
    *,
    num: int,
    class_label: int | None,
    prompt: str | Sequence[str] | None,
    overrides: dict[str, object],
    seed: int,
    decoder: Path | None = None,
    device_name: str,
    out: Path | None,
    first_clip: int | None = None,
    precision: str = "fp32",
) -> int:
    """`prompt`: one prompt, or several: `num` samples of each, one grid row per prompt with
    the prompt written under every image (commands/prompts.py). `decoder`: a run whose decoder
    replaces the autoencoder's (`ul sample --decoder`, e.g. a decoder-distillation run).
    `first_clip`: for a frame-prediction model, sample i continues held-out clip `first_clip + i`
    (default 0); the saved clips show that clip's real context frames. `precision`: the
    networks' compute precision (fp32, bf16 under autocast, or auto: bf16 where native); the
    sampler's state stays fp32.

    Under torchrun the ranks share the work (see `sample_chunks`: the samples do not depend
    on the number of ranks); rank 0 gathers exactly `num` images and writes the outputs."""
    context = init_distributed(resolve_device(device_name).type)
    device = resolve_device(device_name, context)
    precision = resolve_precision(precision, device)
    models = kind_of(run_dir).generator(run_dir, device)
    if decoder is not None:
        models = with_decoder(models, kind_of(decoder).autoencoder(decoder, device), decoder)
    base, autoencoder, config, conditions = models
    settings = replace(config.eval, **overrides)  # type: ignore[arg-type]
    prompts = [prompt] if isinstance(prompt, str) else None if prompt is None else list(prompt)
    per_prompt = num
    if prompts is not None:  # prompt-major: every prompt's samples in one row (or more)
        prompts = [text for text in prompts for _ in range(per_prompt)]
        num = len(prompts)
    cond, labels = sampling_conditions(conditions, num, class_label, prompts)
    real: torch.Tensor | None = None  # frame prediction: the clips whose context is given
    if base.context_frames:
        real = test_clips(run_dir, config.autoencoder_run, first_clip or 0, num)
        cond = context_condition(base, autoencoder, real, settings.batch_size)
    elif first_clip is not None:
        raise ConditionError("--context is for frame-prediction models (base.context_frames > 0)")
    start = time.perf_counter()
    with autocast(device, precision):
        chunks = sample_chunks(
            base,
            autoencoder,
            cond,
            conditions,
            settings,
            num=num,
            seed=seed,
            rank=context.rank,
            world_size=context.world_size,
        )
    gathered = context.gather_objects({k: to_uint8(v) for k, v in chunks.items()})
    if gathered is None:  # not rank 0: rank 0 writes the outputs
        return 0
    merged = {chunk: part for per_rank in gathered for chunk, part in per_rank.items()}
    images = torch.cat([merged[chunk] for chunk in sorted(merged)])
    assert images.shape[0] == num, (images.shape, num)
    if real is not None:  # the given frames as they were, the generated ones after them
        images = keep_context(base, images, real)
    seconds = time.perf_counter() - start
    out = out or run_dir / "samples" / f"sample_seed{seed}"
    out.mkdir(parents=True, exist_ok=True)
    columns = 10 if class_label is None and prompt is None and conditions.kind != "none" else 8
    if prompts is not None:
        grid = save_captioned_grid(images, prompts, out / "grid.png", min(per_prompt, 8))
    else:
        grid = save_pictures(
            images, out / "grid.png", columns, context_frames=context_frames(base, images)
        )
    np.savez_compressed(out / "samples.npz", images=images.numpy(), labels=labels.numpy())
    meta = {
        "num": num,
        "class": class_label,
        "prompt": prompt if isinstance(prompt, str) or prompt is None else list(prompt),
        "seed": seed,
        "context_clips": None if real is None else [first_clip or 0, (first_clip or 0) + num],
        "num_ranks": context.world_size,
        "seconds": seconds,
        "seconds_per_image": seconds / num,
        "base_steps": settings.base_steps,
        "decoder_steps": settings.decoder_steps,
        "decoder_samples": settings.decoder_samples,
        "decoder": None if decoder is None else str(decoder),
        "sampler": settings.sampler,
        "decoder_sampler": settings.decoder_sampler or settings.sampler,
        "guidance": settings.guidance,
        "guidance_interval": settings.guidance_interval,
        "precision": precision,
    }
    (out / "sample.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(
        f"{num} samples in {seconds:.1f}s ({seconds / num:.3f} s/image); grid: {grid}; "
        f"arrays: {out / 'samples.npz'}"
    )
    return 0


def test_clips(run_dir: Path, autoencoder_run: str, start: int, num: int) -> torch.Tensor:
    """Held-out clips `start` … `start + num − 1` (uint8) of the data of base run `run_dir`'s
    autoencoder."""
    ae_config, _ = load_run(
        autoencoder_dir(run_dir, autoencoder_run), "autoencoder", AutoencoderRunConfig
    )
    test = load_split(ae_config.data, "test")
    if not 0 <= start <= len(test) - num:
        raise ConditionError(
            f"--context {start} with --num {num} needs test clips up to {start + num - 1}; "
            f"the test split has {len(test)}"
        )
    return torch.stack([test[index][0] for index in range(start, start + num)])
