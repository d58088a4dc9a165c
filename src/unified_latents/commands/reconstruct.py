"""`ul reconstruct`: encode + decode held-out images of an autoencoder (or end-to-end) run; PSNR
and SSIM, a grid of originals next to reconstructions (`RunKind.autoencoder`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from unified_latents.config import ConfigError
from unified_latents.data.datasets import heldout_images, load_split
from unified_latents.evaluation.reconstruction import reconstruction_statistics
from unified_latents.runs.registry import kind_of
from unified_latents.sampling.samplers import SamplerKind
from unified_latents.training.distributed import resolve_device
from unified_latents.visualize_video import save_comparison


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
    model, config, loaded = kind_of(run_dir).autoencoder(run_dir, device)
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
    grid = save_comparison(images, reconstructions, out / "grid.png")
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
