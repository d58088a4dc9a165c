"""The training state beyond the weights, and how it goes into and out of a checkpoint.

Resuming must continue exactly: besides weights, EMA and optimizer moments we keep the step, the
training time used, the data stream position and every RNG (the explicit noise generator of each
rank and torch's global generator, which dropout uses).
"""

from __future__ import annotations

import subprocess
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from unified_latents.training.checkpoint import (
    CheckpointError,
    LoadedCheckpoint,
    list_checkpoints,
    optimizer_from_flat,
    read_latest_checkpoint,
    save_checkpoint,
    set_aside_newer,
)
from unified_latents.training.distributed import DistributedContext
from unified_latents.training.task import BatchSource
from unified_latents.version import __version__


@dataclass
class TrainingState:
    step: int = 0
    elapsed_seconds: float = 0.0
    skipped_steps: int = 0
    consecutive_nonfinite: int = 0


def git_revision(directory: Path | None = None) -> str:
    """The git revision of the checkout holding `directory` (default: this package's source
    tree), or 'unknown' outside a checkout."""
    try:
        root = directory or Path(__file__).resolve().parents[1]  # the unified_latents package
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        return result.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(config_dict: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "config": dict(config_dict),
        "version": __version__,
        "git_revision": git_revision(),
    }


def check_training_state(state: Mapping[str, Any]) -> None:
    """What `restore_state` reads from a state.json beyond the optimizer settings, checked when
    the checkpoint is read: a damaged file then counts as an unreadable checkpoint, and the
    previous one is used (`read_latest_checkpoint(..., check=check_training_state)`)."""
    training = state.get("training")
    if not isinstance(training, dict) or training.get("step") != state["step"]:
        raise ValueError("state.json has no training counters for its step")
    TrainingState(**training)  # no unknown counters


@dataclass
class Resumable:
    """What a checkpoint holds besides the counters, and a resume restores: the weights, their
    EMA, the optimizer moments, each rank's noise generator and data position."""

    model: nn.Module
    ema: nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    stream: BatchSource


def save_state(
    directory: Path,
    state: TrainingState,
    parts: Resumable,
    *,
    config_dict: Mapping[str, Any],
    keep: int,
    context: DistributedContext,
) -> None:
    """Gather every rank's RNG and stream state, then rank 0 writes the checkpoint."""
    per_rank = context.all_gather_objects(
        {"generator": parts.generator.get_state().tolist(), "stream": parts.stream.state_dict()}
    )
    if context.is_main:
        tensors = {
            f"rng.rank{rank}": torch.tensor(item["generator"], dtype=torch.uint8)
            for rank, item in enumerate(per_rank)
        }
        tensors["rng.torch_global"] = torch.random.get_rng_state()
        payload = {
            "training": asdict(state),
            "streams": [item["stream"] for item in per_rank],
            **provenance(config_dict),
        }
        save_checkpoint(
            directory,
            state.step,
            model=parts.model,
            ema=parts.ema,
            optimizer=parts.optimizer,
            tensors=tensors,
            state=payload,
            keep=keep,
        )
    context.barrier()


def restore_state(
    loaded: LoadedCheckpoint, parts: Resumable, *, rank: int, world_size: int = 1
) -> TrainingState:
    """Exact with the same number of ranks. With another number, every rank continues from rank
    0's data position (for `BatchStream` with the same global batch and accumulation that is the
    same place in the epoch) and ranks without a saved noise generator keep their fresh one."""
    try:
        parts.model.load_state_dict(loaded.model)
        parts.ema.load_state_dict(loaded.ema)
        optimizer_from_flat(parts.optimizer, loaded.optimizer, loaded.state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as error:  # e.g. a checkpoint of another config
        first = str(error).strip().splitlines()
        raise CheckpointError(
            f"checkpoint {loaded.path} does not fit this model "
            f"({first[-1].strip() if first else type(error).__name__}); resume with the config "
            "it was trained with, or start a new run with --run-dir"
        ) from error
    streams = loaded.state.get("streams", [])
    if streams and len(streams) != world_size:
        if rank == 0:
            warnings.warn(
                f"resuming a {len(streams)}-rank run on {world_size} rank(s): training continues "
                "from the saved step, but the data order and noise are not reproduced exactly",
                stacklevel=2,
            )
        parts.stream.load_state_dict(streams[0])
    elif rank < len(streams):
        parts.stream.load_state_dict(streams[rank])
    if f"rng.rank{rank}" in loaded.tensors:
        parts.generator.set_state(loaded.tensors[f"rng.rank{rank}"])
    torch.random.set_rng_state(loaded.tensors["rng.torch_global"])
    return TrainingState(**loaded.state["training"])


def resume_state(checkpoints: Path, parts: Resumable, context: DistributedContext) -> TrainingState:
    """Restore everything from the newest readable checkpoint in `checkpoints` (`restore_state`),
    set aside the unreadable newer ones; a fresh state when there is none."""
    if not list_checkpoints(checkpoints):
        return TrainingState()
    loaded = read_latest_checkpoint(checkpoints, check=check_training_state)
    state = restore_state(loaded, parts, rank=context.rank, world_size=context.world_size)
    context.barrier()  # every rank has read it before rank 0 moves unreadable ones aside
    if context.is_main:
        set_aside_newer(checkpoints, state.step)
        tqdm.write(f"resuming from {loaded.path} (step {state.step})")
    return state
