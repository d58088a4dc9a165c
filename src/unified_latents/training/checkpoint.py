"""Checkpoints that are atomic, keep the last K, and load without executing pickled code.

Layout of one checkpoint (a directory, renamed into place only when complete):

    checkpoints/step_00001200/
        model.safetensors       trainable weights
        ema.safetensors         EMA weights (what evaluation and sampling use)
        optimizer.safetensors   optimizer tensors (e.g. Adam moments), flattened
        state.json              step, optimizer hyper-parameters, data-stream and RNG state,
                                resolved config, package version, git revision

Writes go to a temporary directory, every file is fsynced, then the directory is renamed: a killed
run leaves either the previous checkpoint or the new one, never half of one. A checkpoint that
fails to load is reported and the previous one is used.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

STATE_FILE = "state.json"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or corrupt."""


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    step: int


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories; the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _contiguous(tensors: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {key: value.detach().contiguous().cpu() for key, value in tensors.items()}


def optimizer_to_flat(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split an optimizer state dict into tensors (safetensors) and JSON (hyper-parameters)."""
    state = optimizer.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, Any] = {}
    for index, per_param in state["state"].items():
        for name, value in per_param.items():
            if isinstance(value, Tensor):
                tensors[f"{index}.{name}"] = value
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_flat(
    optimizer: torch.optim.Optimizer, tensors: Mapping[str, Tensor], meta: Mapping[str, Any]
) -> None:
    per_param: dict[int, dict[str, Any]] = {}
    for key, value in list(tensors.items()) + list(meta["scalars"].items()):
        index, name = key.split(".", 1)
        per_param.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": meta["param_groups"]})


def save_checkpoint(
    directory: Path,
    step: int,
    *,
    model: nn.Module,
    ema: nn.Module,
    optimizer: torch.optim.Optimizer,
    tensors: Mapping[str, Tensor],
    state: Mapping[str, Any],
    keep: int,
) -> Path:
    """Write checkpoint `step` atomically and delete all but the newest `keep` ones."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"step_{step:08d}"
    temporary = directory / f".tmp_step_{step:08d}_{os.getpid()}"
    # Rank 0 is the only writer of a run, so any other temporary is what a killed run left.
    for stale in directory.glob(".tmp_step_*"):
        shutil.rmtree(stale, ignore_errors=True)
    temporary.mkdir()
    opt_tensors, opt_meta = optimizer_to_flat(optimizer)
    save_file(_contiguous(model.state_dict()), temporary / "model.safetensors")
    save_file(_contiguous(ema.state_dict()), temporary / "ema.safetensors")
    save_file(_contiguous(opt_tensors), temporary / "optimizer.safetensors")
    save_file(_contiguous(tensors), temporary / "extra.safetensors")
    payload = {"step": step, "optimizer": opt_meta, **state}
    (temporary / STATE_FILE).write_text(json.dumps(payload, indent=1))
    for file in temporary.iterdir():
        _fsync_file(file)
    _fsync_dir(temporary)
    if final.exists():  # re-saving the same step (e.g. SIGTERM right after a periodic save)
        _remove(final)
    os.replace(temporary, final)
    _fsync_dir(directory)
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        _remove(old.path)
    return final


def set_aside_newer(directory: Path, step: int) -> list[Path]:
    """Rename the checkpoints newer than `step` (the unreadable ones a resume fell back past) to
    `unreadable_step_*`, kept for inspection: they would otherwise count as the newest of the
    last K and push good checkpoints out. Returns the new paths."""
    moved = []
    for checkpoint in list_checkpoints(directory):
        if checkpoint.step > step:
            target = directory / f"unreadable_{checkpoint.path.name}"
            shutil.rmtree(target, ignore_errors=True)
            os.replace(checkpoint.path, target)
            moved.append(target)
    return moved


def _remove(checkpoint: Path) -> None:
    """Rename out of sight first, so a kill during the deletion never leaves a half-deleted
    checkpoint that still looks complete."""
    doomed = checkpoint.with_name(f".tmp_step_{checkpoint.name}_deleted_{os.getpid()}")
    os.replace(checkpoint, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def list_checkpoints(directory: Path) -> list[Checkpoint]:
    """Complete checkpoints (those with a state file), oldest first."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.glob("step_*"):
        if path.is_dir() and (path / STATE_FILE).is_file():
            try:
                found.append(Checkpoint(path, int(path.name.removeprefix("step_"))))
            except ValueError:
                continue
    return sorted(found, key=lambda checkpoint: checkpoint.step)


@dataclass
class LoadedCheckpoint:
    path: Path
    state: dict[str, Any]
    model: dict[str, Tensor]
    ema: dict[str, Tensor]
    optimizer: dict[str, Tensor]
    tensors: dict[str, Tensor]


# Checks what a caller will read from state.json; any exception marks the checkpoint unreadable.
StateCheck = Callable[[Mapping[str, Any]], None]


def _check_state(state: Any, with_optimizer: bool) -> None:
    if not isinstance(state, dict):
        raise ValueError(f"{STATE_FILE} holds no JSON object")
    if not isinstance(state.get("step"), int):
        raise ValueError(f"{STATE_FILE} has no step")
    if with_optimizer:
        meta = state.get("optimizer")
        if not (
            isinstance(meta, dict)
            and isinstance(meta.get("param_groups"), list)
            and isinstance(meta.get("scalars"), dict)
        ):
            raise ValueError(f"{STATE_FILE} has no optimizer settings")


def read_checkpoint(
    path: Path, *, with_optimizer: bool = True, check: StateCheck | None = None
) -> LoadedCheckpoint:
    """Read one checkpoint directory; raises CheckpointError naming the path if it is corrupt
    (unreadable files, or a state.json without what this reader needs: see `check`)."""
    try:
        state = json.loads((path / STATE_FILE).read_text())
        _check_state(state, with_optimizer)
        if check is not None:
            check(state)
        ema = load_file(path / "ema.safetensors")
        # Exported folders (commands/export.py) keep only the EMA weights: enough to evaluate.
        exported = not with_optimizer and not (path / "model.safetensors").exists()
        model = ema if exported else load_file(path / "model.safetensors")
        optimizer = load_file(path / "optimizer.safetensors") if with_optimizer else {}
        extra_path = path / "extra.safetensors"
        tensors = load_file(extra_path) if with_optimizer and extra_path.exists() else {}
    except Exception as error:  # any I/O, JSON or safetensors failure means "corrupt"
        raise CheckpointError(f"checkpoint {path} is unreadable ({error})") from error
    return LoadedCheckpoint(path, state, model, ema, optimizer, tensors)


def read_latest_checkpoint(
    directory: Path, *, with_optimizer: bool = True, check: StateCheck | None = None
) -> LoadedCheckpoint:
    """The newest readable checkpoint; corrupt ones are reported and skipped."""
    checkpoints = list_checkpoints(directory)
    if not checkpoints:
        raise CheckpointError(f"no checkpoint found in {directory}")
    for checkpoint in reversed(checkpoints):
        try:
            return read_checkpoint(checkpoint.path, with_optimizer=with_optimizer, check=check)
        except CheckpointError as error:
            warnings.warn(f"{error}; falling back to an earlier checkpoint", stacklevel=2)
    raise CheckpointError(f"every checkpoint in {directory} is unreadable")
