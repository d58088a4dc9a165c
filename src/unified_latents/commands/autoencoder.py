"""`ul train-autoencoder` and `ul reconstruct`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from unified_latents.commands.dry_run import autoencoder_dry_run
from unified_latents.config import ConfigError
from unified_latents.data.datasets import load_split
from unified_latents.presets import AUTOENCODER_PRESETS
from unified_latents.runs.autoencoder import (
    AutoencoderRunConfig,
    AutoencoderTask,
    build_autoencoder,
    heldout_images,
    reconstruction_statistics,
)
from unified_latents.runs.directory import load_run, resolve_preset
from unified_latents.runs.training import run_training
from unified_latents.sampling.samplers import SamplerKind
from unified_latents.training.distributed import init_distributed, resolve_device
from unified_latents.training.seeding import seeded
from unified_latents.visualize import interleave, save_image_grid


def train_autoencoder(
    preset: str, assignments: list[str], run_dir: Path | None, *, dry_run: bool = False
) -> int:
    config = resolve_preset(AUTOENCODER_PRESETS, preset, assignments)
    if dry_run:
        return autoencoder_dry_run(config)
    run_dir = run_dir or Path("runs") / f"autoencoder-{preset}"
    device_kind = resolve_device(config.train.device).type
    context = init_distributed(device_kind)
    device = resolve_device(config.train.device, context)
    with seeded(config.train.seed):  # same seed, same initial weights
        task = AutoencoderTask(config)
    return run_training("autoencoder", config, task, run_dir, device=device, context=context)


def load_autoencoder(run_dir: Path, device: torch.device, step: int | None = None):  # type: ignore[no-untyped-def]
    """The EMA autoencoder of a run (newest checkpoint, or that of `step`), rebuilt from the
    config stored in its checkpoint."""
    config, loaded = load_run(run_dir, "autoencoder", AutoencoderRunConfig, step)
    model = build_autoencoder(config)
    model.load_state_dict(loaded.ema)
    return model.to(device).eval(), config, loaded


def reconstruct(
    run_dir: Path,
    *,
    num: int,
    steps: int | None,
    sampler: SamplerKind | None,
    seed: int,
    device_name: str,
    out: Path | None,
) -> int:
    if num < 1 or (steps is not None and steps < 1):
        raise ConfigError(f"--num and --steps must be positive, got {num} and {steps}")
    device = resolve_device(device_name)
    model, config, loaded = load_autoencoder(run_dir, device)
    steps = config.eval.decoder_steps if steps is None else steps
    sampler = sampler or config.eval.sampler
    images, _ = heldout_images(load_split(config.data, "test"), num)
    start = time.perf_counter()
    stats, reconstructions = reconstruction_statistics(
        model,
        images,
        num_steps=steps,
        sampler=sampler,
        batch_size=config.eval.batch_size,
        seed=seed,
    )
    seconds = time.perf_counter() - start
    out = out or run_dir / "reconstruct"
    grid = save_image_grid(
        interleave(images[:64], reconstructions[:64]), out / "grid.png", 8, scale=2
    )
    result = {
        **stats,
        "num_images": int(images.shape[0]),
        "decoder_steps": steps,
        "sampler": sampler,
        "deterministic_decoder": model.deterministic_decoder,  # steps/sampler then unused
        "seed": seed,
        "checkpoint": str(loaded.path),
        "seconds": seconds,
    }
    (out / "reconstruct.json").write_text(json.dumps(result, indent=2) + "\n")
    decoding = f"{steps} {sampler} decoder steps"
    if model.deterministic_decoder:
        decoding = "deterministic decoder"
    print(
        f"PSNR {stats['psnr_db']:.2f} dB, SSIM {stats['ssim']:.4f} over {images.shape[0]} "
        f"held-out images ({decoding}, {seconds:.1f}s)"
    )
    print(f"grid: {grid}\nresults: {out / 'reconstruct.json'}")
    return 0
