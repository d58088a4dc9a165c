"""The settings of the shared training loop (`training/loop.py`), as one frozen config group
(`train.*` in every run config)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from unified_latents.config import ConfigError
from unified_latents.training.precision import Precision


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    batch_size: int = 64  # GLOBAL batch: constant whatever the number of ranks or accumulation
    grad_accumulation: int = 1
    max_steps: int = 20_000
    time_budget_minutes: float = 0.0  # stop after this much training time (0 = no limit)
    log_every: int = 25
    eval_every: int = 500
    checkpoint_every: int = 500
    checkpoint_minutes: float = 10.0  # also checkpoint after this much wall time
    keep_checkpoints: int = 3
    seed: int = 0
    device: str = "auto"
    # auto: bf16 autocast where the device runs bf16 natively, else fp32 (training/precision.py)
    precision: Precision = "auto"
    compile: bool = False
    activation_checkpointing: bool = False  # recompute block activations in the backward
    ema_decay: float = 0.999
    max_nonfinite_steps: int = 20
    progress: bool = True

    def __post_init__(self) -> None:
        # Per-field ranges only: `--set` applies one field at a time, so rules across fields
        # (batch_size divisible by grad_accumulation) wait for `check_fields`.
        at_least = {
            "batch_size": 1,
            "grad_accumulation": 1,
            "max_steps": 0,
            "log_every": 1,
            "eval_every": 0,  # 0: no periodic evaluation
            "checkpoint_every": 0,  # 0: no periodic checkpoint
            "keep_checkpoints": 0,  # 0: keep every checkpoint
            "max_nonfinite_steps": 1,
        }
        for name, low in at_least.items():
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be ≥ {low}, got {getattr(self, name)}")
        for name in ("time_budget_minutes", "checkpoint_minutes"):  # 0: no limit
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be a finite number ≥ 0, got {value}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")

    def check_fields(self) -> None:
        """Across fields (`config.check_across_fields`, after all `--set` overrides)."""
        self.micro_batch_size(1)

    def micro_batch_size(self, world_size: int) -> int:
        per_step = world_size * self.grad_accumulation
        if self.batch_size % per_step:
            raise ConfigError(
                f"train.batch_size={self.batch_size} must be divisible by world size × "
                f"grad_accumulation = {world_size} × {self.grad_accumulation}"
            )
        return self.batch_size // per_step
