"""What a run directory of an image-training kind (autoencoder, end-to-end) holds after training."""

from __future__ import annotations

from pathlib import Path

RUN_FILES = (
    "config.json",
    "metrics.jsonl",
    "plots/loss.png",
    "plots/bits_per_pixel.png",
    "plots/psnr.png",
)


def assert_run_files(run_dir: Path, *more: str) -> None:
    """Every file of `RUN_FILES` and `more` (paths relative to `run_dir`) exists."""
    for name in (*RUN_FILES, *more):
        assert (run_dir / name).exists(), name
