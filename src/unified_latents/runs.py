"""Run directories: the resolved config written at the start, resume checks, and rebuilding
trained models from a run's checkpoint (never from re-typed flags)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from unified_latents.config import ConfigError, flatten, from_dict, to_dict
from unified_latents.training.checkpoint import (
    STATE_FILE,
    LoadedCheckpoint,
    list_checkpoints,
    read_checkpoint,
    read_latest_checkpoint,
)
from unified_latents.training.state import provenance

T = TypeVar("T")
CONFIG_FILE = "config.json"

# Fields a user may change when resuming a run (they do not change what is being trained).
RESUMABLE_PREFIXES = (
    "train.max_steps",
    "train.time_budget_minutes",
    "train.log_every",
    "train.eval_every",
    "train.checkpoint_every",
    "train.checkpoint_minutes",
    "train.keep_checkpoints",
    "train.progress",
    "train.device",
    "train.compile",
    "eval.",
    "data.num_workers",
    "data.root",
)


class RunError(RuntimeError):
    """A run directory cannot be used as asked (wrong kind, conflicting config, no checkpoint)."""


def config_record(kind: str, config: Any) -> dict[str, Any]:
    return {"kind": kind, "run": to_dict(config)}


def read_run_record(run_dir: Path) -> dict[str, Any]:
    path = run_dir / CONFIG_FILE
    if not path.exists():
        raise RunError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    record: dict[str, Any] = json.loads(path.read_text())["config"]
    return record


def training_precision(run_dir: Path) -> str | None:
    """The precision the run trained in: what train.precision resolved to (config.json's
    "resolved"), else its stored train.precision (runs from before "auto"); None if unknown."""
    try:
        record = read_run_record(run_dir)
    except (RunError, OSError, ValueError, KeyError):
        return None
    resolved = record.get("resolved", {}).get("train.precision")
    stored = record.get("run", {}).get("train", {}).get("precision")
    return str(resolved or stored) if (resolved or stored) else None


def prepare_run_dir(
    run_dir: Path,
    kind: str,
    config: T,
    config_type: type[T],
    resolved: Mapping[str, Any] | None = None,
) -> T:
    """Create `run_dir` with config.json, or check that resuming it with `config` is safe.
    `resolved` records what "auto" settings became on this machine (e.g. train.precision)."""
    record = config_record(kind, config) | ({"resolved": dict(resolved)} if resolved else {})
    path = run_dir / CONFIG_FILE
    if path.exists():
        saved = read_run_record(run_dir)
        if saved["kind"] != kind:
            raise RunError(
                f"{run_dir} holds a {saved['kind']} run, not {kind}; choose another --run-dir"
            )
        saved_config = from_dict(config_type, saved["run"])
        before, after = flatten(saved_config), flatten(config)
        changed = [key for key in after if before.get(key) != after[key]]
        blocked = [key for key in changed if not key.startswith(RESUMABLE_PREFIXES)]
        if blocked:
            details = ", ".join(f"{key}: {before.get(key)!r} → {after[key]!r}" for key in blocked)
            raise RunError(
                f"{run_dir} was started with a different config ({details}). Resume with the "
                "same settings, or start a new run with --run-dir."
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(provenance(record), indent=2) + "\n")
    return config


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step_{step:08d}"


def load_run(
    run_dir: Path, kind: str, config_type: type[T], step: int | None = None
) -> tuple[T, LoadedCheckpoint]:
    """The run's config (as stored in the checkpoint) and the checkpoint: the newest readable
    one, or the one of optimizer step `step`."""
    if step is None:
        loaded = read_latest_checkpoint(run_dir / "checkpoints", with_optimizer=False)
    else:
        loaded = read_checkpoint(checkpoint_dir(run_dir, step), with_optimizer=False)
    record = loaded.state["config"]
    if record.get("kind") != kind:
        raise RunError(f"{run_dir} holds a {record.get('kind')} run, expected {kind}")
    return from_dict(config_type, record["run"]), loaded


def resolve_preset(presets: Mapping[str, Callable[[], T]], name: str, assignments: list[str]) -> T:
    from unified_latents.config import override

    if name not in presets:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(sorted(presets))}")
    return override(presets[name](), assignments)


def latest_training_state(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest complete checkpoint of a run and its training counters (`step`,
    `elapsed_seconds`, ...), read without loading weights; None before the first checkpoint."""
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    if not checkpoints:
        return None
    newest = checkpoints[-1].path
    state = json.loads((newest / STATE_FILE).read_text())
    return newest, dict(state["training"])
