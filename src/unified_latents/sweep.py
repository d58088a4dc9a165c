"""Grids of settings for `ul sweep`: parsing, point names, and whether a point is finished.

`--grid KEY=V1,V2,...` takes any config key of the preset, checked against the field's type
exactly like `--set` (unknown keys and wrong types are errors that name the key), or one of the
short aliases below. Values are split at commas, so list-valued settings cannot be swept.

    loss_factor, c_lf    → model.loss_factor   (c_lf, UL-SPEC §7)
    bias, decoder_bias   → model.decoder_bias  (b in sigmoid(b − λ), §6)
    logsnr_0             → model.logsnr_0      (λ_0, §4)
    target_bits_per_pixel → model.target_bits_per_pixel (objectives/rate_control.py)

The cartesian product of the axes gives the points; each point is an ordinary run directory named
after its values, e.g. `loss_factor=1.5,decoder_bias=-2`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unified_latents.config import ConfigError, flatten, override
from unified_latents.runs.directory import latest_training_state
from unified_latents.training.config import TrainConfig

GRID_ALIASES: dict[str, str] = {
    "loss_factor": "model.loss_factor",
    "c_lf": "model.loss_factor",
    "bias": "model.decoder_bias",
    "decoder_bias": "model.decoder_bias",
    "target_bits_per_pixel": "model.target_bits_per_pixel",
    "logsnr_0": "model.logsnr_0",
}


@dataclass(frozen=True)
class GridAxis:
    key: str  # the full dotted config key
    values: tuple[Any, ...]  # typed as the config field
    texts: tuple[str, ...]  # canonical spelling, used in `--set` and directory names


def canonical_text(value: Any) -> str:
    """One spelling per value, so `2`, `2.0` and `2.00` name the same run directory."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def parse_axis(spec: str, template: Any) -> GridAxis:
    """`KEY=V1,V2,...` → an axis, each value checked by applying it to `template`."""
    name, separator, raw = spec.partition("=")
    name = name.strip()
    if not separator or not name:
        raise ConfigError(f"--grid expects KEY=V1,V2,..., got {spec!r}")
    key = GRID_ALIASES.get(name, name)
    texts = [part.strip() for part in raw.split(",")]
    if not raw.strip() or not all(texts):
        raise ConfigError(f"--grid {key}: expected comma-separated values, got {raw!r}")
    values = []
    for text in texts:
        value = flatten(override(template, [f"{key}={text}"]))[key]
        if isinstance(value, tuple | list):
            raise ConfigError(f"--grid {key}: list-valued settings cannot be swept")
        values.append(value)
    canonical = tuple(canonical_text(value) for value in values)
    if len(set(canonical)) != len(canonical):
        raise ConfigError(f"--grid {key}: a value is repeated in {raw!r}")
    return GridAxis(key=key, values=tuple(values), texts=canonical)


def parse_grid(specs: Sequence[str], template: Any) -> list[GridAxis]:
    if not specs:
        raise ConfigError("ul sweep needs at least one --grid KEY=V1,V2,...")
    axes = [parse_axis(spec, template) for spec in specs]
    keys = [axis.key for axis in axes]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ConfigError(f"--grid {repeated[0]} is given more than once")
    return axes


def grid_points(axes: Sequence[GridAxis]) -> list[dict[str, str]]:
    """Every combination of values (first axis slowest), as {key: canonical text}."""
    combinations = itertools.product(*(axis.texts for axis in axes))
    return [dict(zip([axis.key for axis in axes], texts, strict=True)) for texts in combinations]


def short_names(axes: Sequence[GridAxis]) -> dict[str, str]:
    """The last component of each key (`loss_factor`), or the full key where that is ambiguous."""
    last = [axis.key.rsplit(".", 1)[-1] for axis in axes]
    return {
        axis.key: name if last.count(name) == 1 else axis.key
        for axis, name in zip(axes, last, strict=True)
    }


def point_name(point: Mapping[str, str], axes: Sequence[GridAxis]) -> str:
    names = short_names(axes)
    return ",".join(f"{names[key]}={text}" for key, text in point.items())


def point_assignments(point: Mapping[str, str]) -> list[str]:
    return [f"{key}={text}" for key, text in point.items()]


def training_finished(run_dir: Path, train: TrainConfig) -> bool:
    """True when the run's newest checkpoint reached `max_steps` or used its time budget, i.e.
    training it again would stop at once."""
    newest = latest_training_state(run_dir)
    if newest is None:
        return False
    counters = newest[1]
    if counters["step"] >= train.max_steps:
        return True
    budget_seconds = train.time_budget_minutes * 60.0
    return budget_seconds > 0 and counters["elapsed_seconds"] >= budget_seconds
