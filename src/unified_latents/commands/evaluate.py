"""`ul evaluate`: measure a trained run; write RUN_DIR/eval/eval.json and RUN_DIR/eval/report.md.

Autoencoder runs: rFID@N / rKID@N (reconstructions vs the same N held-out originals), PSNR, SSIM,
bits from the prior's bound, FLOPs. Base runs: gFID@N / KID@N (class-balanced samples vs the
first N test-split images, as rFID), FD_cls@N and classifier accuracy (Fashion-MNIST), held-out
ELBO next to the prior bound, FLOPs and sampling cost (pixel-space base runs: the same, without
a prior bound).
End-to-end runs (`ul train-end-to-end`): both, for the one model (samples as `ul sample` draws
them, reconstructions, the base model's ELBO as the latent's bits). Every kind also records the
training FLOPs consumed so far (`evaluation/compute.py`), for comparisons at equal training compute.
The computations live in `evaluation/autoencoder.py`, `evaluation/base_model.py` and
`evaluation/end_to_end.py`; this module loads the run and writes the results.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from unified_latents.commands.autoencoder import load_autoencoder
from unified_latents.commands.base import (
    encoded_from_step,
    load_generator_models,
    sampling_conditions,
)
from unified_latents.commands.end_to_end import RUN_KIND as END_TO_END_KIND
from unified_latents.commands.end_to_end import load_end_to_end_model
from unified_latents.conditions import ConditionSource, dataset_captions
from unified_latents.evaluation.autoencoder import (
    Evaluation,
    EvaluationError,
    evaluate_autoencoder,
    load_extractor,
)
from unified_latents.evaluation.base_model import evaluate_base
from unified_latents.evaluation.compute import TrainingCost, stage1_forward_flops, training_compute
from unified_latents.evaluation.end_to_end import evaluate_end_to_end
from unified_latents.evaluation.report import render_report, summary_line
from unified_latents.generation import SamplingSettings
from unified_latents.metrics.inception import InceptionFeatures
from unified_latents.objectives.autoencoder import Autoencoder
from unified_latents.runs.autoencoder import AutoencoderRunConfig
from unified_latents.runs.directory import (
    latest_training_state,
    load_run,
    newest_readable_checkpoint,
    read_run_record,
    training_precision,
)
from unified_latents.training.checkpoint import Checkpoint
from unified_latents.training.distributed import resolve_device
from unified_latents.visualize import save_image_grid

EVAL_DIR = "eval"
EVAL_FILE = "eval.json"
REPORT_FILE = "report.md"


@dataclass(frozen=True, kw_only=True)
class EvaluateOptions:
    num: int  # N: reconstructions / samples (and the N of FID@N)
    decoder_steps: int | None  # None: the run's eval setting
    base_steps: int | None
    guidance: float | None
    seed: int
    extractor: InceptionFeatures | None  # None: no FID/KID
    cache_dir: Path | None  # reference statistics (None: $UL_CACHE_DIR or ~/.cache)
    progress: bool


def read_evaluation(run_dir: Path) -> dict[str, Any] | None:
    """The run's last `eval.json`, or None if it was never evaluated (or the file is cut short)."""
    path = run_dir / EVAL_DIR / EVAL_FILE
    try:
        record: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record


class RunEvaluation(NamedTuple):
    evaluation: Evaluation
    settings: dict[str, Any]  # how it was measured, for eval.json and the report
    costs: list[TrainingCost]  # training compute behind the evaluated model


def _steps_so_far(run_dir: Path) -> int:
    """Optimizer steps of the run's newest checkpoint (the one `load_run` reads)."""
    newest = latest_training_state(run_dir)
    return int(newest[1]["step"]) if newest else 0


def _run_cost(
    part: str, run_dir: Path, step: int, batch_size: int, flops_per_image: float
) -> TrainingCost:
    """Training compute of `run_dir` up to optimizer step `step` (the evaluated checkpoint)."""
    return TrainingCost(
        part=part,
        run_dir=str(run_dir),
        step=step,
        batch_size=batch_size,
        flops_per_image=flops_per_image,
    )


def _stage1_cost(ae_dir: Path, autoencoder: Autoencoder, batch_size: int) -> TrainingCost:
    """Stage 1 up to the checkpoint the base model's latents were encoded from (named in the
    latent cache's source.json), else up to the newest stage-1 checkpoint."""
    step = encoded_from_step(ae_dir)
    return TrainingCost(
        part="stage1",
        run_dir=str(ae_dir),
        step=_steps_so_far(ae_dir) if step is None else step,
        batch_size=batch_size,
        flops_per_image=3.0 * stage1_forward_flops(autoencoder),
    )


def _finite_or_none(values: dict[str, float]) -> dict[str, float | None]:
    """JSON has no inf/NaN (e.g. PSNR of a perfect reconstruction is +inf): those become null."""
    return {key: value if math.isfinite(value) else None for key, value in values.items()}


def _evaluate_autoencoder_run(
    run_dir: Path, step: int, device: torch.device, options: EvaluateOptions
) -> RunEvaluation:
    model, config, _ = load_autoencoder(run_dir, device, step)
    steps = config.eval.decoder_steps if options.decoder_steps is None else options.decoder_steps
    evaluation = evaluate_autoencoder(
        model,
        config,
        num=options.num,
        decoder_steps=steps,
        sampler=config.eval.sampler,
        seed=options.seed,
        extractor=options.extractor,
        cache_dir=options.cache_dir,
        progress=options.progress,
    )
    settings = {
        "decoder_steps": steps,
        "sampler": config.eval.sampler,
        "deterministic_decoder": model.deterministic_decoder,  # steps/sampler then unused
        "dataset": config.data.name,
    }
    per_image = evaluation.flops["stage1_training_per_image"]
    cost = _run_cost("stage1", run_dir, step, config.train.batch_size, per_image)
    return RunEvaluation(evaluation, settings, [cost])


def _sampling_overrides(options: EvaluateOptions) -> dict[str, Any]:
    overrides = {
        "base_steps": options.base_steps,
        "decoder_steps": options.decoder_steps,
        "guidance": options.guidance,
    }
    return {name: value for name, value in overrides.items() if value is not None}


def _evaluate_base_run(
    run_dir: Path, step: int, device: torch.device, options: EvaluateOptions
) -> RunEvaluation:
    base, autoencoder, config, conditions = load_generator_models(run_dir, device, step)
    costs = []
    if config.pixel is not None:  # pixel-space diffusion: no autoencoder run
        data = config.pixel.data
    else:
        ae_dir = Path(config.autoencoder_run)
        ae_config, _ = load_run(ae_dir, "autoencoder", AutoencoderRunConfig)
        data = ae_config.data
        costs.append(_stage1_cost(ae_dir, autoencoder, ae_config.train.batch_size))
    if conditions.keyed_by_index:  # held-out ELBOs look captions up by dataset index
        conditions = ConditionSource(
            config.model.condition, conditions.class_names, *dataset_captions(data)
        )
    settings = replace(config.eval, **_sampling_overrides(options))
    cond, labels = sampling_conditions(conditions, options.num, None, None)
    evaluation = evaluate_base(
        base,
        autoencoder,
        conditions,
        config,
        data,
        cond=cond,
        labels=labels,
        settings=settings,
        seed=options.seed,
        extractor=options.extractor,
        cache_dir=options.cache_dir,
        progress=options.progress,
    )
    described = {
        **_sampling_description(settings, conditions, data.name),
        "autoencoder_run": config.autoencoder_run or "none (pixel space)",
    }
    per_sample = evaluation.flops["base_training_per_sample"]
    costs.append(_run_cost("base", run_dir, step, config.train.batch_size, per_sample))
    return RunEvaluation(evaluation, described, costs)


def _sampling_description(
    settings: SamplingSettings, conditions: ConditionSource, dataset: str
) -> dict[str, object]:
    """How the evaluated samples were drawn, for eval.json (base and end-to-end runs)."""
    return {
        "base_steps": settings.base_steps,
        "decoder_steps": settings.decoder_steps,
        "sampler": settings.sampler,
        "guidance": settings.guidance,
        "guidance_interval": settings.guidance_interval,
        "condition": conditions.kind,
        "classes": "sample i is generated for class i mod K (balanced)",
        "dataset": dataset,
    }


def _evaluate_end_to_end_run(
    run_dir: Path, step: int, device: torch.device, options: EvaluateOptions
) -> RunEvaluation:
    model, config, conditions = load_end_to_end_model(run_dir, device, step)
    settings = replace(config.eval, **_sampling_overrides(options))
    cond, labels = sampling_conditions(conditions, options.num, None, None)
    evaluation = evaluate_end_to_end(
        model,
        config,
        conditions,
        cond=cond,
        labels=labels,
        settings=settings,
        seed=options.seed,
        extractor=options.extractor,
        cache_dir=options.cache_dir,
        progress=options.progress,
    )
    described = {
        "scheme": config.scheme,
        **_sampling_description(settings, conditions, config.data.name),
    }
    per_image = evaluation.flops["end_to_end_training_per_image"]
    cost = _run_cost("end_to_end", run_dir, step, config.train.batch_size, per_image)
    return RunEvaluation(evaluation, described, [cost])


def evaluate(
    run_dir: Path,
    *,
    num: int = 1000,
    inception: Path | None = None,
    decoder_steps: int | None = None,
    base_steps: int | None = None,
    guidance: float | None = None,
    seed: int = 0,
    device_name: str = "auto",
    fid: bool = True,
    command: str = "",
    cache_dir: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate the run in `run_dir` (its kind is read from config.json); returns eval.json."""
    kind = read_run_record(run_dir)["kind"]
    if num < 1:
        raise EvaluationError(f"--num must be positive, got {num}")
    device = resolve_device(device_name)
    options = EvaluateOptions(
        num=num,
        decoder_steps=decoder_steps,
        base_steps=base_steps,
        guidance=guidance,
        seed=seed,
        extractor=load_extractor(inception, device) if fid else None,
        cache_dir=cache_dir,
        progress=progress,
    )
    start = time.perf_counter()
    evaluators = {
        "autoencoder": _evaluate_autoencoder_run,
        "base": _evaluate_base_run,
        END_TO_END_KIND: _evaluate_end_to_end_run,
    }
    if kind not in evaluators:
        raise EvaluationError(
            f"ul evaluate supports {', '.join(evaluators)} runs; {run_dir} is a {kind!r} run"
        )
    if kind == "autoencoder" and (base_steps is not None or guidance is not None):
        raise EvaluationError(
            "--base-steps and --guidance apply to base-model and end-to-end runs only"
        )
    # The newest readable checkpoint, named once: a damaged newer one is skipped (with a
    # warning) and everything below, eval.json included, is about the one actually loaded.
    checkpoint = newest_readable_checkpoint(run_dir)
    result = evaluators[kind](run_dir, checkpoint.step, device, options)
    result.evaluation.seconds["total"] = time.perf_counter() - start
    return write_evaluation(run_dir, kind, checkpoint, result, options, command)


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
    grid_name = "reconstructions.png" if kind == "autoencoder" else "samples.png"
    save_image_grid(evaluation.grid, out / grid_name, evaluation.grid_columns, scale=2)
    images = {"grid": f"{EVAL_DIR}/{grid_name}"}
    for name, (grid, columns) in evaluation.more_grids.items():
        save_image_grid(grid, out / f"{name}.png", columns, scale=2)
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
