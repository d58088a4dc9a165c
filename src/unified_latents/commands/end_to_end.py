"""`ul train-end-to-end`: encoder, decoder and base model in one run (UL-SPEC §9). `ul sample`
serves its runs through `load_end_to_end_generator`, exactly like two-stage base runs."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from unified_latents.conditions import ConditionSource
from unified_latents.data.datasets import load_split
from unified_latents.objectives.latent_diffusion import LatentDiffusion
from unified_latents.objectives.single_stage import SingleStageLatents
from unified_latents.objectives.unified_latents import UnifiedLatents
from unified_latents.presets import END_TO_END_PRESETS
from unified_latents.runs.directory import config_record, load_run, resolve_preset
from unified_latents.runs.end_to_end import (
    EndToEndRunConfig,
    EndToEndTask,
    build_end_to_end_model,
    condition_source,
)
from unified_latents.runs.training import run_training
from unified_latents.training.distributed import init_distributed, resolve_device
from unified_latents.training.seeding import seeded

RUN_KIND = "end-to-end"


def train_end_to_end(
    preset: str, assignments: list[str], run_dir: Path | None, *, dry_run: bool = False
) -> int:
    config = resolve_preset(END_TO_END_PRESETS, preset, assignments)
    if dry_run:
        print(json.dumps(config_record(RUN_KIND, config), indent=2))
        return 0
    run_dir = run_dir or Path("runs") / f"end-to-end-{preset}-{config.scheme}"
    context = init_distributed(resolve_device(config.train.device).type)
    device = resolve_device(config.train.device, context)
    with seeded(config.train.seed):  # same seed, same initial weights
        task = EndToEndTask(config)
    return run_training(RUN_KIND, config, task, run_dir, device=device, context=context)


def load_end_to_end_model(
    run_dir: Path, device: torch.device, step: int | None = None
) -> tuple[SingleStageLatents, EndToEndRunConfig, ConditionSource]:
    """The EMA model of an end-to-end run (encoder, decoder and base model, in eval mode) of its
    newest checkpoint (or that of `step`), its config and condition source."""
    config, loaded = load_run(run_dir, RUN_KIND, EndToEndRunConfig, step)
    model = build_end_to_end_model(config)
    model.load_state_dict(loaded.ema)
    model = model.to(device).eval()
    class_names = load_split(config.data, "test").class_names
    conditions = condition_source(config.model.base.condition, class_names)
    return model, config, conditions


def load_end_to_end_generator(
    run_dir: Path, device: torch.device
) -> tuple[LatentDiffusion, UnifiedLatents, EndToEndRunConfig, ConditionSource]:
    """The EMA base model and autoencoder of an end-to-end run, its config and condition
    source: the same pair a two-stage base run yields (see `commands/base.py`)."""
    model, config, conditions = load_end_to_end_model(run_dir, device)
    return model.base, model.autoencoder, config, conditions
