"""Run directories: the resolved config written at the start, resume checks, and rebuilding
trained models from a run's checkpoint (never from re-typed flags)."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from unified_latents.config import ConfigError, flatten, from_dict, to_dict
from unified_latents.training.checkpoint import (
    STATE_FILE,
    Checkpoint,
    LoadedCheckpoint,
    list_checkpoints,
    read_checkpoint,
    read_latest_checkpoint,
)
from unified_latents.training.state import check_training_state, provenance

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


def _valid_record(record: Any) -> dict[str, Any] | None:
    """A run config record `{"kind": ..., "run": {...}}` in today's format (`upgrade_record`),
    or None if `record` is not one."""
    valid = isinstance(record, dict) and isinstance(record.get("kind"), str)
    return upgrade_record(record) if valid and isinstance(record.get("run"), dict) else None


def upgrade_record(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record in today's format. Until 2026-12-07 the pixel baseline was a "base" run
    with a `pixel` group ({data, logsnr_max}; null for latent runs); it is now the "pixel" kind
    with those two fields at the top of its config."""
    run = record["run"]
    if record["kind"] != "base" or "pixel" not in run:
        return record
    run = dict(run)
    pixel = run.pop("pixel")
    if pixel is None:
        return {**record, "run": run}
    run.pop("autoencoder_run", None)
    return {**record, "kind": "pixel", "run": {**pixel, **run}}


def check_run_state(state: Mapping[str, Any]) -> None:
    """A `StateCheck` for run checkpoints: training counters and the run's config record."""
    check_training_state(state)
    if _valid_record(state.get("config")) is None:
        raise ValueError("state.json has no run config")


def _read_json(path: Path) -> Any:
    """The JSON in `path`, or None if it is missing, unreadable or not JSON."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _checkpoint_states(run_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """(checkpoint, its state.json) of every complete checkpoint whose state.json reads as a
    JSON object, newest first; the others are what a resume falls back past."""
    states = []
    for checkpoint in reversed(list_checkpoints(run_dir / "checkpoints")):
        state = _read_json(checkpoint.path / STATE_FILE)
        if isinstance(state, dict):
            states.append((checkpoint.path, state))
    return states


def read_run_record(run_dir: Path) -> dict[str, Any]:
    """The run's kind and config from config.json; if that file is missing or damaged, from
    the newest checkpoint that stores them (with a warning)."""
    path = run_dir / CONFIG_FILE
    stored = _read_json(path)
    record = _valid_record(stored.get("config") if isinstance(stored, dict) else None)
    if record is not None:
        return record
    for checkpoint, state in _checkpoint_states(run_dir):
        record = _valid_record(state.get("config"))
        if record is not None:
            problem = "is unreadable" if path.exists() else "is missing"
            warnings.warn(
                f"{path} {problem}; using the config stored in {checkpoint}", stacklevel=2
            )
            return record
    if not path.exists():
        raise RunError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    raise RunError(
        f"{path} is unreadable (not the JSON `ul` writes) and no checkpoint stores the run's "
        "config; restore the file, or start a new run with --run-dir"
    )


def config_changes(saved: Any, config: Any) -> list[str]:
    """'key: old → new' for each field that differs between two configs of one type, except
    those a resumed run may change (RESUMABLE_PREFIXES)."""
    before, after = flatten(saved), flatten(config)
    return [
        f"{key}: {before.get(key)!r} → {after[key]!r}"
        for key in after
        if before.get(key) != after[key] and not key.startswith(RESUMABLE_PREFIXES)
    ]


def check_run_dir(run_dir: Path, kind: str, config: T, config_type: type[T]) -> None:
    """Refuse to train `config` in `run_dir` if the run there is of another kind, or if its
    config.json or any of its checkpoints holds another config (beyond resumable settings).
    Reads only; `write_run_config` writes."""
    if not list_checkpoints(run_dir / "checkpoints"):
        _check_unstarted(run_dir, kind, config, config_type)
        return
    saved = read_run_record(run_dir)
    if saved["kind"] != kind:
        raise RunError(
            f"{run_dir} holds a {saved['kind']} run, not {kind}; choose another --run-dir"
        )
    changes = config_changes(from_dict(config_type, saved["run"]), config)
    if changes:
        raise RunError(
            f"{run_dir} was started with a different config ({', '.join(changes)}). Resume "
            "with the same settings, or start a new run with --run-dir."
        )
    for checkpoint, state in _checkpoint_states(run_dir):
        record = _valid_record(state.get("config"))
        if record is None:  # unreadable: the resume falls back past it
            continue
        if record["kind"] != kind:
            changes = [f"kind: {record['kind']!r} → {kind!r}"]
        else:
            changes = config_changes(from_dict(config_type, record["run"]), config)
        if changes:
            raise RunError(
                f"checkpoint {checkpoint} was trained with a different config "
                f"({', '.join(changes)}); resume with its settings, move it out of "
                f"{checkpoint.parent}, or start a new run with --run-dir"
            )


def _check_unstarted(run_dir: Path, kind: str, config: T, config_type: type[T]) -> None:
    """A run directory without checkpoints has no training to protect: its config.json (what a
    failed start left, perhaps damaged) is replaced, unless it belongs to another kind of run."""
    stored = _read_json(run_dir / CONFIG_FILE)
    saved = _valid_record(stored.get("config") if isinstance(stored, dict) else None)
    if saved is None:
        return
    if saved["kind"] != kind:
        raise RunError(
            f"{run_dir} holds a {saved['kind']} run, not {kind}; choose another --run-dir"
        )
    try:
        changes = config_changes(from_dict(config_type, saved["run"]), config)
    except ConfigError as error:  # e.g. written by another version
        changes = [f"unreadable ({error})"]
    if changes:
        warnings.warn(
            f"{run_dir} has no checkpoint yet: starting it again with the new config "
            f"({', '.join(changes)})",
            stacklevel=3,
        )


def write_run_config(
    run_dir: Path, kind: str, config: Any, resolved: Mapping[str, Any] | None = None
) -> None:
    """config.json: the resolved config, what "auto" settings became on this machine
    (`resolved`, e.g. train.precision) and provenance, replaced atomically."""
    record = config_record(kind, config) | ({"resolved": dict(resolved)} if resolved else {})
    run_dir.mkdir(parents=True, exist_ok=True)
    temporary = run_dir / f".{CONFIG_FILE}.{os.getpid()}"
    temporary.write_text(json.dumps(provenance(record), indent=2) + "\n")
    os.replace(temporary, run_dir / CONFIG_FILE)


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
    check_run_dir(run_dir, kind, config, config_type)
    write_run_config(run_dir, kind, config, resolved=resolved)
    return config


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step_{step:08d}"


def load_run(
    run_dir: Path, kind: str, config_type: type[T], step: int | None = None
) -> tuple[T, LoadedCheckpoint]:
    """The run's config (as stored in the checkpoint) and the checkpoint: the newest readable
    one, or the one of optimizer step `step`."""
    if step is None:
        loaded = read_latest_checkpoint(
            run_dir / "checkpoints", with_optimizer=False, check=check_run_state
        )
    else:
        path = checkpoint_dir(run_dir, step)
        loaded = read_checkpoint(path, with_optimizer=False, check=check_run_state)
    record = _valid_record(loaded.state["config"])
    assert record is not None  # check_run_state accepted it
    if record["kind"] != kind:
        raise RunError(f"{run_dir} holds a {record['kind']} run, expected {kind}")
    config = from_dict(config_type, record["run"])
    stored = _read_json(run_dir / CONFIG_FILE)
    run_record = _valid_record(stored.get("config") if isinstance(stored, dict) else None)
    if run_record is not None and run_record["kind"] == kind:
        changes = config_changes(config, from_dict(config_type, run_record["run"]))
        if changes:
            raise RunError(
                f"checkpoint {loaded.path} was trained with another config than "
                f"{run_dir / CONFIG_FILE} ({', '.join(changes)}); it belongs to another run"
            )
    return config, loaded


def newest_readable_checkpoint(run_dir: Path) -> Checkpoint:
    """The checkpoint `load_run(run_dir, ...)` loads: the newest that reads (damaged newer ones
    are skipped with a warning)."""
    loaded = read_latest_checkpoint(
        run_dir / "checkpoints", with_optimizer=False, check=check_run_state
    )
    return Checkpoint(loaded.path, int(loaded.state["step"]))


def resolve_preset(presets: Mapping[str, Callable[[], T]], name: str, assignments: list[str]) -> T:
    from unified_latents.config import override

    if name not in presets:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(sorted(presets))}")
    return override(presets[name](), assignments)


def latest_training_state(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest complete checkpoint of a run and its training counters (`step`,
    `elapsed_seconds`, ...), read without loading weights (skipping those whose state.json is
    damaged); None before the first checkpoint."""
    for checkpoint, state in _checkpoint_states(run_dir):
        training = state.get("training")
        if isinstance(training, dict) and isinstance(training.get("step"), int):
            return checkpoint, dict(training)
    return None


def newest_step(run_dir: Path) -> int | None:
    """The step of the run's newest complete checkpoint (`latest_training_state`); None before
    the first one."""
    newest = latest_training_state(run_dir)
    return None if newest is None else int(newest[1]["step"])
