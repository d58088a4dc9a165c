"""`ul evaluate`: measure a trained run; write RUN_DIR/eval/eval.json and RUN_DIR/eval/report.md.

Autoencoder runs: rFID@N / rKID@N (reconstructions vs the same N held-out originals), PSNR, SSIM,
bits from the prior's bound, FLOPs. Base runs: gFID@N / KID@N (class-balanced samples vs the
first N test-split images, as rFID), FD_cls@N and classifier accuracy (Fashion-MNIST), held-out
ELBO next to the prior bound, FLOPs and sampling cost (pixel-space base runs: the same, without
a prior bound).
End-to-end runs (`ul train-end-to-end`): both, for the one model (samples as `ul sample` draws
them, reconstructions, the base model's ELBO as the latent's bits). Every kind also records the
training FLOPs consumed so far (`evaluation/compute.py`), for comparisons at equal training compute.
Each run kind measures itself (`RunKind.evaluate` in `runs/<kind>.py`, with the measurements of
`evaluation/`); this module finds the kind and the checkpoint and writes the results.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from unified_latents.evaluation.compute import training_compute
from unified_latents.evaluation.fid import EvaluationError, load_extractor
from unified_latents.evaluation.report import render_report, summary_line
from unified_latents.evaluation.run import EvaluateOptions, RunEvaluation
from unified_latents.runs.directory import (
    newest_readable_checkpoint,
    newest_step,
    training_precision,
)
from unified_latents.runs.registry import kind_of
from unified_latents.training.checkpoint import Checkpoint
from unified_latents.training.distributed import resolve_device
from unified_latents.training.precision import resolve_precision
from unified_latents.visualize_video import save_pictures

EVAL_DIR = "eval"
EVAL_FILE = "eval.json"
REPORT_FILE = "report.md"


def read_evaluation(run_dir: Path) -> dict[str, Any] | None:
    """The run's last `eval.json`, or None if it was never evaluated (or the file is cut short)."""
    path = run_dir / EVAL_DIR / EVAL_FILE
    try:
        record: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record


def evaluation_current(run_dir: Path, num: int, fid: bool = True) -> bool:
    """The run's eval.json measured its newest checkpoint, with N = `num` and FID iff `fid` (so
    `ul sweep` and the benchmarks skip evaluating it again)."""
    record = read_evaluation(run_dir)
    if record is None:
        return False
    same_step = record.get("step") == newest_step(run_dir)
    return same_step and record.get("num") == num and bool(record.get("fid")) == fid


def _finite_or_none(values: dict[str, float]) -> dict[str, float | None]:
    """JSON has no inf/NaN (e.g. PSNR of a perfect reconstruction is +inf): those become null."""
    return {key: value if math.isfinite(value) else None for key, value in values.items()}


def evaluate(
    run_dir: Path,
    *,
    num: int = 1000,
    inception: Path | None = None,
    decoder_steps: int | None = None,
    base_steps: int | None = None,
    guidance: float | None = None,
    decoder_samples: int | None = None,
    seed: int = 0,
    device_name: str = "auto",
    fid: bool = True,
    command: str = "",
    cache_dir: Path | None = None,
    progress: bool = True,
    precision: str = "fp32",
) -> dict[str, Any]:
    """Evaluate the run in `run_dir` (its kind is read from config.json); returns eval.json.
    `precision`: of the networks while they sample (fp32, bf16 or auto: bf16 where the device
    runs it natively); everything else is measured in fp32."""
    kind = kind_of(run_dir)
    if num < 1:
        raise EvaluationError(f"--num must be positive, got {num}")
    device = resolve_device(device_name)
    if kind.opens_as != "generator" and precision != "fp32":
        raise EvaluationError(
            "--precision applies to runs that generate (their sampling); autoencoder runs are "
            "evaluated in fp32"
        )
    precision = resolve_precision(precision, device)  # a clear error for a wrong value, first
    options = EvaluateOptions(
        num=num,
        decoder_steps=decoder_steps,
        base_steps=base_steps,
        guidance=guidance,
        decoder_samples=decoder_samples,
        seed=seed,
        extractor=load_extractor(inception, device) if fid else None,
        cache_dir=cache_dir,
        progress=progress,
        precision=precision,
    )
    start = time.perf_counter()
    generator_only = (base_steps, guidance, decoder_samples)
    if kind.opens_as != "generator" and any(value is not None for value in generator_only):
        raise EvaluationError(
            "--base-steps, --guidance and --decoder-samples apply to runs that generate "
            "(base-model, pixel-model and end-to-end runs) only"
        )
    # The newest readable checkpoint, named once: a damaged newer one is skipped (with a
    # warning) and everything below, eval.json included, is about the one actually loaded.
    checkpoint = newest_readable_checkpoint(run_dir)
    result = kind.evaluate(run_dir, checkpoint.step, device, options)
    result.evaluation.seconds["total"] = time.perf_counter() - start
    return write_evaluation(run_dir, kind.name, checkpoint, result, options, command)


def write_evaluation(
    run_dir: Path,
    kind: str,
    checkpoint: Checkpoint,
    result: RunEvaluation,
    options: EvaluateOptions,
    command: str,
) -> dict[str, Any]:
    """eval.json, report.md and the image grids under RUN_DIR/eval; prints a summary."""
    evaluation = result.evaluation
    out = run_dir / EVAL_DIR
    grid_name = f"{evaluation.grid_name}.png"
    save_pictures(evaluation.grid, out / grid_name, evaluation.grid_columns, scale=2)
    images = {"grid": f"{EVAL_DIR}/{grid_name}"}
    for name, (grid, columns) in evaluation.more_grids.items():
        save_pictures(grid, out / f"{name}.png", columns, scale=2)
        images[name] = f"{EVAL_DIR}/{name}.png"
    if evaluation.arrays:
        np.savez_compressed(out / "samples.npz", **evaluation.arrays)  # type: ignore[arg-type]
        images["arrays"] = f"{EVAL_DIR}/samples.npz"
    training, training_flops = training_compute(result.costs)
    extractor = options.extractor
    record = {
        "kind": kind,
        "run_dir": str(run_dir),
        "checkpoint": str(checkpoint.path),  # the one evaluated
        "step": checkpoint.step,
        "training_precision": training_precision(run_dir),
        "sampling_precision": options.precision,
        "command": command,
        "num": options.num,
        "fid": extractor is not None,
        "seed": options.seed,
        "inception": str(extractor.path) if extractor is not None else None,
        "settings": result.settings,
        "metrics": _finite_or_none(evaluation.metrics),
        "flops": evaluation.flops | training_flops,
        "training": training,
        "seconds": evaluation.seconds,
        "notes": evaluation.notes,
        "images": images,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    (out / EVAL_FILE).write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    (out / REPORT_FILE).write_text(render_report(record))
    print(summary_line(record))
    print(f"results: {out / EVAL_FILE}; report: {out / REPORT_FILE}")
    return record
