"""`--dry-run` of the training commands: the resolved config as one JSON document on stdout,
with the parameter count and forward FLOPs per image of each network (built on the `meta`
device, evaluation/network_summary.py), and the same as a table on stderr."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from unified_latents.config import from_dict
from unified_latents.evaluation.network_summary import (
    NetworkCost,
    autoencoder_costs,
    base_costs,
    costs_record,
    format_costs,
    latent_shape,
)
from unified_latents.presets import AUTOENCODER_PRESETS
from unified_latents.runs.autoencoder import AutoencoderRunConfig
from unified_latents.runs.base_model import BaseRunConfig
from unified_latents.runs.directory import RunError, config_record, read_run_record


def _print(record: dict[str, Any], costs: list[NetworkCost], note: str = "") -> int:
    print(json.dumps(record | {"networks": costs_record(costs)}, indent=2))
    if costs:
        print(format_costs(costs, note), file=sys.stderr)  # stdout stays one JSON document
    elif note:
        print(note, file=sys.stderr)
    return 0


def autoencoder_dry_run(config: AutoencoderRunConfig) -> int:
    return _print(config_record("autoencoder", config), autoencoder_costs(config))


def base_latent_source(config: BaseRunConfig) -> tuple[tuple[int, int, int] | None, str]:
    """The base model's input shape and where it came from: the pixel data, the stage-1 run's
    stored config, or (dry runs only) an autoencoder preset named by --autoencoder."""
    if config.pixel is not None:
        data = config.pixel.data
        return (data.channels, data.image_size, data.image_size), "pixel space"
    source = config.autoencoder_run
    try:
        record = read_run_record(Path(source))
    except (RunError, OSError, ValueError):
        record = None
    if record is not None and record.get("kind") == "autoencoder":
        stage1 = from_dict(AutoencoderRunConfig, record["run"])
        return latent_shape(stage1), f"latent of the autoencoder run {source}"
    if source in AUTOENCODER_PRESETS:
        return latent_shape(AUTOENCODER_PRESETS[source]()), f"latent of preset {source!r}"
    return None, (
        f"no network table: {source} is neither an autoencoder run nor an autoencoder preset "
        f"(a dry run accepts --autoencoder PRESET, e.g. imagenet-512)"
    )


def base_dry_run(config: BaseRunConfig) -> int:
    shape, note = base_latent_source(config)
    costs = [] if shape is None else base_costs(config, shape)
    record = config_record("base", config)
    if shape is not None:
        record["input_shape"] = list(shape)
    return _print(record, costs, note)
