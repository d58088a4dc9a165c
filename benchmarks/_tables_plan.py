"""What `paper_tables.py` runs: the runs (preset, settings, `ul` command), and the FLOP budgets.

Equal-FLOP budgets (UL-SPEC §10: training FLOPs = 3 × forward, linear layers, convolutions and
attention) are converted into `train.max_steps` per model:

    steps = floor(budget / (global batch × training FLOPs per image))

The training FLOPs per image come from the same counter `ul evaluate` uses (`evaluation/compute.py`,
`metrics/flops.py`), run here on the models built from each run's resolved preset, before any
training, so they equal the `*_training_per_*` entries that later appear in the runs' eval.json.
The runs themselves are trained and evaluated in process by the library's commands.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from unified_latents.commands.train import train, train_base_alias
from unified_latents.conditions import ConditionSource
from unified_latents.evaluation.compute import call_flops, stage1_forward_flops
from unified_latents.metrics.flops import forward_flops_per_example
from unified_latents.networks.conditioning import ConditionConfig
from unified_latents.objectives.autoencoder import Autoencoder
from unified_latents.runs.autoencoder import build_autoencoder
from unified_latents.runs.base_model import BaseRunConfig, build_base_model
from unified_latents.runs.directory import resolve_preset
from unified_latents.runs.end_to_end import build_end_to_end_model
from unified_latents.runs.pixel_model import PixelRunConfig
from unified_latents.runs.presets import (
    AUTOENCODER_PRESETS,
    BASE_PRESETS,
    END_TO_END_PRESETS,
    PIXEL_PRESETS,
)
from unified_latents.runs.registry import run_kind
from unified_latents.training.config import TrainConfig

SCALE_LABEL = "small-scale, CPU, not comparable to the paper"
UL = "ul"
KL_VAE = "kl-vae"
PIXEL = "pixel"
ABLATION_ROWS = (
    UL,
    KL_VAE,
    "ul-mse-decoder",
    "ul-normal-prior",
    "ul-lambda10",
    "ul-stopgrad-prior",
)
SCHEMES = ("shifted-decoder", "noise-augmented")
SECTIONS = ("table2", "ablations", "flops", "end-to-end")
QUIET = "train.progress=false"  # no progress bars in the logs (a logging setting: resumable)
RunKind = Literal["autoencoder", "base", "end-to-end"]
Cost = tuple[int, float]  # (global batch size, training FLOPs per image or sample)


@dataclass(frozen=True)
class Presets:
    """The preset names of one scale: Fashion-MNIST, or the `-tiny` ones (8×8 digits)."""

    tiny: bool

    def autoencoder(self, row: str) -> str:
        if row == UL:
            return "tiny" if self.tiny else "fashion-mnist"
        return f"{row}-tiny" if self.tiny else row

    @property
    def base(self) -> str:
        return "tiny" if self.tiny else "fashion-mnist"

    @property
    def pixel(self) -> str:
        return "pixel-tiny" if self.tiny else "pixel-fashion-mnist"

    @property
    def end_to_end(self) -> str:
        return "tiny" if self.tiny else "fashion-mnist"


@dataclass(frozen=True)
class Run:
    """One training run of the plan; `key` is its directory under the work dir."""

    key: str  # "stage1/kl-vae", "base/pixel", "end-to-end/noise-augmented"
    kind: RunKind
    preset: str
    assignments: tuple[str, ...]
    autoencoder: str | None = None  # key of the stage-1 run a latent base model trains on

    def directory(self, work_dir: Path) -> Path:
        return work_dir / self.key

    def train_args(self, work_dir: Path) -> list[str]:
        command = {
            "autoencoder": "train-autoencoder",
            "base": "train-base",
            "end-to-end": "train-end-to-end",
        }[self.kind]
        args = [command, "--preset", self.preset, "--run-dir", str(self.directory(work_dir))]
        if self.autoencoder is not None:
            args += ["--autoencoder", str(work_dir / self.autoencoder)]
        for assignment in self.assignments:
            args += ["--set", assignment]
        return args

    def train_in_process(self, work_dir: Path) -> int:
        """Train (or resume) the run in this process, as `ul` with `train_args` does."""
        run_dir, assignments = self.directory(work_dir), list(self.assignments)
        if self.kind == "base":
            autoencoder = None if self.autoencoder is None else work_dir / self.autoencoder
            return train_base_alias(autoencoder, self.preset, assignments, run_dir)
        return train(self.kind, self.preset, assignments, run_dir)

    def train_config(self) -> TrainConfig:
        kind, preset = self.kind, self.preset
        if kind == "base" and preset.startswith("pixel-"):  # `ul train-base --preset pixel-X`
            kind, preset = "pixel", preset.removeprefix("pixel-")
        return resolve_preset(run_kind(kind).presets, preset, list(self.assignments)).train


def command_line(args: list[str]) -> str:
    """How a `ul` invocation reads in the report."""
    return shlex.join(["ul", *args])


# ---------------------------------------------------------------- budgets (pure arithmetic)
def steps_for_flops(budget: float, batch_size: int, flops_per_image: float) -> int:
    """The most optimizer steps (at least 1) whose training FLOPs stay within `budget`."""
    if budget <= 0 or batch_size < 1 or flops_per_image <= 0:
        raise ValueError(
            f"need a positive budget, batch and cost (got {budget}, {batch_size}, "
            f"{flops_per_image})"
        )
    per_step = batch_size * flops_per_image
    return max(1, math.floor(budget / per_step * (1 + 1e-9)))  # exact multiples stay exact


@dataclass(frozen=True)
class Budget:
    """A model's training budget: `steps` × `batch_size` × `flops_per_image`."""

    name: str
    batch_size: int
    flops_per_image: float
    steps: int

    @property
    def flops(self) -> float:
        return float(self.steps * self.batch_size) * self.flops_per_image

    def record(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "batch_size": self.batch_size,
            "training_flops_per_image": self.flops_per_image,
            "training_flops": self.flops,
        }


def equal_flop_budgets(
    costs: Mapping[str, Cost],
    *,
    flops: float | None = None,
    steps: int | None = None,
    reference: str = UL,
) -> tuple[float, dict[str, Budget]]:
    """Budgets of equal training FLOPs. Either `flops` per model, or `steps` for the `reference`
    model, whose FLOPs then set every model's budget. Returns (FLOP budget, budgets)."""
    if (flops is None) == (steps is None):
        raise ValueError("give exactly one of a FLOP budget and a step count")
    if steps is not None:
        if steps < 1:
            raise ValueError(f"the step count must be positive, got {steps}")
        batch, per_image = costs[reference]
        flops = float(steps * batch) * per_image
    assert flops is not None
    budgets = {}
    for name, (batch, per_image) in costs.items():
        count = steps if steps is not None and name == reference else None
        count = count or steps_for_flops(flops, batch, per_image)
        budgets[name] = Budget(name, batch, per_image, count)
    return flops, budgets


def two_stage_flops(base_eval: Mapping[str, Any]) -> float:
    """Total training FLOPs behind a latent base model (stage 1 up to the checkpoint its latents
    came from + stage 2), as `ul evaluate` recorded them in its eval.json."""
    total = base_eval.get("training", {}).get("total_flops")
    parts = base_eval.get("training", {}).get("parts", {})
    if total is None or "stage1" not in parts:
        raise ValueError(
            "the two-stage base run's eval.json has no stage-1 + base training FLOPs "
            "(`training.total_flops`): re-run `ul evaluate` with a version that records them"
        )
    return float(total)


# ---------------------------------------------------------------- FLOP counts (build models)
def _condition(config: ConditionConfig) -> torch.Tensor | None:
    """One example's condition (class 0); class names do not change a class model's FLOPs."""
    if config.kind == "text":
        raise ValueError("equal-FLOP budgets are computed for class or unconditional presets")
    names = [str(index) for index in range(max(config.num_classes, 1))]
    return ConditionSource(config, names).for_classes(torch.zeros(1, dtype=torch.long))


def stage1_cost(preset: str, assignments: list[str]) -> Cost:
    config = resolve_preset(AUTOENCODER_PRESETS, preset, assignments)
    model = build_autoencoder(config)
    return config.train.batch_size, 3.0 * stage1_forward_flops(model)


def base_cost(
    preset: str, assignments: list[str], autoencoder: tuple[str, list[str]] | None
) -> Cost:
    """A base model's (batch, training FLOPs per sample) on the latents of the stage-1 preset
    `autoencoder` = (preset, settings), or in pixel space when it is None."""
    config: BaseRunConfig | PixelRunConfig
    space: Autoencoder
    if preset.startswith("pixel-"):  # `ul train-base --preset pixel-X` = `ul train pixel`
        config = resolve_preset(PIXEL_PRESETS, preset.removeprefix("pixel-"), assignments)
        space = config.identity()
    elif autoencoder is None:
        raise ValueError(f"base preset {preset!r} needs an autoencoder")
    else:
        config = resolve_preset(BASE_PRESETS, preset, assignments)
        space = build_autoencoder(resolve_preset(AUTOENCODER_PRESETS, *autoencoder))
    base = build_base_model(config.model, space)
    z = torch.zeros(1, *base.latent_shape)  # [1, c, h, w]
    cond = _condition(config.model.condition)
    forward = forward_flops_per_example(base.denoiser, z, torch.zeros(1), cond)
    return config.train.batch_size, 3.0 * forward


def end_to_end_cost(preset: str, assignments: list[str]) -> Cost:
    config = resolve_preset(END_TO_END_PRESETS, preset, assignments)
    model = build_end_to_end_model(config)
    size, channels = config.data.image_size, config.data.channels
    x = torch.zeros(1, channels, size, size)  # [1, C, H, W]
    cond = _condition(config.model.base.condition)
    generator = torch.Generator().manual_seed(0)
    return config.train.batch_size, 3.0 * call_flops(lambda: model(x, cond, generator))


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON record (plan.json, sweep.json, a decoder-steps result), or None if unreadable."""
    try:
        record: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record
