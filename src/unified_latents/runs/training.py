"""The part every training command shares: lock and check the run directory, run the shared loop,
print where it stopped, and turn a signal stop into `Interrupted`."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch

from unified_latents.runs.directory import check_run_dir, config_record, write_run_config
from unified_latents.runs.lock import RunLock
from unified_latents.training.config import TrainConfig
from unified_latents.training.distributed import DistributedContext
from unified_latents.training.loop import train
from unified_latents.training.optim import OptimConfig
from unified_latents.training.precision import resolve_precision
from unified_latents.training.task import TrainingTask


class Interrupted(Exception):
    """A training run stopped by SIGTERM/Ctrl-C after writing its checkpoint. Raised by
    `run_training` so that commands built on it (`ul sweep`, `ul demo`) stop too instead of going
    on to their next step; `ul` then exits with `INTERRUPTED_EXIT_CODE`."""


# The exit status of a command stopped by SIGTERM/Ctrl-C after saving its work: 75 is sysexits.h's
# EX_TEMPFAIL ("temporary failure; retry later"), i.e. re-run the same command to resume. It
# differs from 0 (finished), 1 (crash) and 2 (a user error), so job schedulers and scripts can tell
# an interrupted run from a finished one.
INTERRUPTED_EXIT_CODE = 75


class TrainableRunConfig(Protocol):
    """A resolved run config with the training-loop and optimizer settings (frozen dataclass)."""

    @property
    def train(self) -> TrainConfig: ...

    @property
    def optim(self) -> OptimConfig: ...


def run_training(
    kind: str,
    config: TrainableRunConfig,
    task: TrainingTask,
    run_dir: Path,
    *,
    device: torch.device,
    context: DistributedContext,
) -> int:
    """Train `task` in `run_dir` (created or resumed) with `config.train` and `config.optim`.
    `config` is the resolved run config of `kind` ("autoencoder", "base", "end-to-end").

    Rank 0 holds `run_dir`'s lock for the whole training (another training there is refused),
    and config.json is written only once the data has passed its checks."""
    # What "auto" became on this machine, kept next to the config (config.json, checkpoints).
    resolved = {"train.precision": resolve_precision(config.train.precision, device)}
    locks: list[RunLock] = []
    context.run_on_main(lambda: locks.append(RunLock(run_dir).acquire()))
    try:
        context.run_on_main(lambda: check_run_dir(run_dir, kind, config, type(config)))
        result = train(
            task,
            run_dir=run_dir,
            train_config=config.train,
            optim_config=config.optim,
            config_dict=config_record(kind, config) | {"resolved": resolved},
            device=device,
            context=context,
            before_writing=lambda: context.run_on_main(
                lambda: write_run_config(run_dir, kind, config, resolved=resolved)
            ),
        )
    finally:
        for lock in locks:
            lock.release()
    if context.is_main:
        summary = ", ".join(f"{k}={v:.4g}" for k, v in result.last_eval.items())
        print(f"stopped at step {result.step} ({result.stopped_by}); {summary}")
        print(f"run directory: {run_dir}")
    if result.stopped_by == "signal":
        raise Interrupted(f"stopped at step {result.step} by a signal; re-run to resume")
    return 0
