"""`ul train KIND --preset P [--set key=value ...] [--run-dir DIR] [--dry-run]` for every run kind
(`runs/registry.py`), and the old per-kind commands as thin aliases of it (`ul train-autoencoder`,
`ul train-base [--autoencoder AE_RUN]`, `ul train-end-to-end`).

`--dry-run` prints the resolved config as one JSON document on stdout, with the parameter count
and forward FLOPs per image of each network (built on the `meta` device), and the same as a table
on stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from unified_latents.evaluation.network_summary import costs_record, format_costs
from unified_latents.runs.directory import RunError, config_record, resolve_preset
from unified_latents.runs.kind import RunKind
from unified_latents.runs.registry import run_kind
from unified_latents.runs.training import run_training
from unified_latents.training.distributed import init_distributed, resolve_device

PIXEL_PREFIX = "pixel-"  # `ul train-base --preset pixel-X` is `ul train pixel --preset X`


def train(
    kind_name: str,
    preset: str,
    assignments: list[str],
    run_dir: Path | None = None,
    *,
    dry_run: bool = False,
) -> int:
    """Train (or resume) a run of `kind_name` from `preset` with `--set` `assignments`."""
    kind = run_kind(kind_name)
    config = resolve_preset(kind.presets, preset, assignments)
    if dry_run:
        return print_dry_run(kind, config)
    context = init_distributed(resolve_device(config.train.device).type)
    device = resolve_device(config.train.device, context)
    task = kind.task(config, context, device)  # before the run directory: fails early
    run_dir = run_dir or kind.default_run_dir(preset, config)
    return run_training(kind.name, config, task, run_dir, device=device, context=context)


def print_dry_run(kind: RunKind, config: Any) -> int:
    table = kind.networks(config)
    record = config_record(kind.name, config) | table.record
    print(json.dumps(record | {"networks": costs_record(table.costs)}, indent=2))
    if table.costs:
        print(format_costs(table.costs, table.note), file=sys.stderr)  # stdout: one JSON
    elif table.note:
        print(table.note, file=sys.stderr)
    return 0


def train_base_alias(
    autoencoder_run: Path | None,
    preset: str,
    assignments: list[str],
    run_dir: Path | None,
    *,
    dry_run: bool = False,
) -> int:
    """`ul train-base`: a base model on `autoencoder_run`'s latents, or, for a `pixel-*` preset,
    the pixel-space baseline (`ul train pixel`)."""
    if preset.startswith(PIXEL_PREFIX) and preset not in run_kind("base").presets:
        if autoencoder_run is not None:
            raise RunError("a pixel-space preset trains on images: drop --autoencoder")
        pixel_preset = preset.removeprefix(PIXEL_PREFIX)
        run_dir = run_dir or Path("runs") / f"base-{preset}"  # where this alias always wrote
        # `pixel.data.*` and `pixel.logsnr_max` sit at the top of the pixel kind's config
        assignments = [setting.removeprefix("pixel.") for setting in assignments]
        return train("pixel", pixel_preset, assignments, run_dir, dry_run=dry_run)
    if autoencoder_run is not None:
        assignments = [*assignments, f"autoencoder_run={autoencoder_run}"]
    return train("base", preset, assignments, run_dir, dry_run=dry_run)
