"""The one training loop shared by every stage (stage 1, stage 2, end-to-end).

It owns the optimizer, warm-up, gradient clipping and accumulation, EMA, bf16 autocast, DDP,
periodic evaluation, metrics, plots, atomic checkpoints and exact resumption; a `TrainingTask`
supplies the model, the data and the loss. Re-running on a run directory resumes from its newest
readable checkpoint with the same weights, optimizer moments, data position and RNG state.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from unified_latents.config import ConfigError
from unified_latents.networks.checkpointing import set_activation_checkpointing
from unified_latents.training.checkpoint import (
    list_checkpoints,
    read_latest_checkpoint,
    set_aside_newer,
)
from unified_latents.training.distributed import DistributedContext, process_group_active
from unified_latents.training.ema import ema_decay_at, make_ema, update_ema
from unified_latents.training.metrics_log import MetricsLog, TrainWindow, read_metrics
from unified_latents.training.optim import (
    OptimConfig,
    build_optimizer,
    learning_rate,
    set_learning_rate,
)
from unified_latents.training.precision import Precision, autocast, resolve_precision
from unified_latents.training.signals import stop_on_signals
from unified_latents.training.state import (
    TrainingState,
    check_training_state,
    restore_state,
    save_state,
)
from unified_latents.training.task import TrainingTask
from unified_latents.visualize import plot_metrics


class NonFiniteLossError(RuntimeError):
    """Too many consecutive steps had a NaN/inf loss or gradient."""


class CompileError(RuntimeError):
    """`train.compile=true` but torch.compile failed (e.g. no working C++ compiler on CPU)."""


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


@dataclass
class TrainResult:
    step: int
    stopped_by: str  # "max_steps", "time_budget" or "signal"
    last_eval: dict[str, float]


@contextlib.contextmanager
def explain_compile_errors(compiling: bool) -> Iterator[None]:
    """torch.compile works lazily, inside the first forward/backward: turn its failures into one
    actionable error instead of a long traceback from deep inside the compiler."""
    try:
        yield
    except torch._dynamo.exc.TorchDynamoException as error:
        if not compiling:
            raise
        lines = str(error).strip().splitlines()
        raise CompileError(
            f"torch.compile failed ({lines[0] if lines else type(error).__name__}); train "
            "without it (--set train.compile=false) or fix the compiler toolchain (on CPU, "
            "inductor needs a working C++ compiler such as gcc; see the CXX variable)"
        ) from error


def train(
    task: TrainingTask,
    *,
    run_dir: Path,
    train_config: TrainConfig,
    optim_config: OptimConfig,
    config_dict: Mapping[str, Any],
    device: torch.device,
    context: DistributedContext | None = None,
    before_writing: Callable[[], None] | None = None,
) -> TrainResult:
    """Train `task` in `run_dir`, resuming from its newest readable checkpoint. The data stream
    is built (and so checked, e.g. enough images for a batch) before anything is written to
    `run_dir`; `before_writing` then runs first (e.g. to write the run's config.json)."""
    context = context or DistributedContext()
    config = train_config
    model = task.model.to(device)
    precision = resolve_precision(config.precision, device)  # warns once if bf16 is emulated
    set_activation_checkpointing(model, config.activation_checkpointing)
    ema = make_ema(model)
    optimizer = build_optimizer(model, optim_config)
    generator = torch.Generator(device=device).manual_seed(config.seed * 1000 + context.rank)
    stream = task.batches(
        config.micro_batch_size(context.world_size), config.seed, context.rank, context.world_size
    )
    if before_writing is not None:
        before_writing()
    state = TrainingState()
    checkpoints = run_dir / "checkpoints"
    if list_checkpoints(checkpoints):
        loaded = read_latest_checkpoint(checkpoints, check=check_training_state)
        state = restore_state(
            loaded,
            model=model,
            ema=ema,
            optimizer=optimizer,
            generator=generator,
            stream=stream,
            rank=context.rank,
            world_size=context.world_size,
        )
        context.barrier()  # every rank has read it before rank 0 moves unreadable ones aside
        if context.is_main:
            set_aside_newer(checkpoints, state.step)
            tqdm.write(f"resuming from {loaded.path} (step {state.step})")
    trainable: nn.Module = model
    if context.enabled or process_group_active():  # a 1-process group too (gpu_check)
        trainable = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if config.compile:
        trainable = torch.compile(trainable)  # type: ignore[assignment]
    log = MetricsLog(run_dir, state.step) if context.is_main else None
    parameters = [p for p in model.parameters() if p.requires_grad]
    budget_seconds = config.time_budget_minutes * 60.0
    last_eval: dict[str, float] = {}
    last_eval_step: int | None = None
    window = TrainWindow()
    last_save_time, last_saved_step = time.perf_counter(), state.step
    stopped_by = "max_steps"

    def checkpoint() -> None:
        nonlocal last_save_time, last_saved_step
        save_state(
            checkpoints,
            state,
            model=model,
            ema=ema,
            optimizer=optimizer,
            generator=generator,
            stream=stream,
            config_dict=config_dict,
            keep=config.keep_checkpoints,
            context=context,
        )
        last_save_time, last_saved_step = time.perf_counter(), state.step

    def evaluate() -> None:
        """On rank 0 only; the other ranks wait in the broadcast of the results."""
        nonlocal last_eval, last_eval_step
        if context.is_main:
            ema.eval()
            last_eval = task.evaluate(ema, state.step, run_dir)
            assert log is not None
            log.log(state.step, "eval", last_eval)
            records = read_metrics(run_dir)
            for stem, keys in task.plots.items():
                plot_metrics(records, keys, run_dir / "plots" / f"{stem}.png", stem)
            summary = ", ".join(f"{k}={v:.4g}" for k, v in last_eval.items())
            tqdm.write(f"[eval step {state.step}] {summary}")
        last_eval, last_eval_step = context.broadcast_object(last_eval), state.step

    def log_window() -> None:
        """A train record of the steps since the last one (their mean terms)."""
        values = task.summarize(window.means())
        values |= {"lr": optimizer.param_groups[0]["lr"], **window.rates()}
        values["skipped_steps"] = float(state.skipped_steps)
        values["bf16"] = float(precision == "bf16")  # the resolved train.precision
        if log is not None:
            log.log(state.step, "train", values)
        bar.set_postfix({k: f"{values[k]:.4g}" for k in task.progress_keys if k in values})
        window.reset()

    bar = tqdm(
        # under a time budget the step count is unknown: no total, so no misleading ETA
        total=None if budget_seconds else config.max_steps,
        initial=state.step,
        disable=not (config.progress and context.is_main),
        dynamic_ncols=True,
        desc="train",
    )
    with stop_on_signals() as signals:
        while state.step < config.max_steps:
            # Decisions from per-rank clocks and signals are OR-ed over ranks in one collective,
            # so every rank breaks, checkpoints and evaluates at the same steps (no deadlock).
            minutes = (time.perf_counter() - last_save_time) / 60.0
            stop, out_of_time, save_due = context.any_each(
                signals["stop"],
                bool(budget_seconds) and state.elapsed_seconds >= budget_seconds,
                bool(config.checkpoint_minutes) and minutes >= config.checkpoint_minutes,
            )
            if stop or out_of_time:
                stopped_by = "signal" if stop else "time_budget"
                if window.steps:  # the steps since the last record, so that none goes unlogged
                    log_window()
                break
            if save_due and state.step != last_saved_step:
                checkpoint()
            step_start = time.perf_counter()
            set_learning_rate(optimizer, learning_rate(state.step, optim_config, config.max_steps))
            optimizer.zero_grad(set_to_none=True)
            sums: dict[str, float] = {}
            for _ in range(config.grad_accumulation):
                batch = next(stream)
                with explain_compile_errors(config.compile):
                    with autocast(device, precision):
                        terms = task.loss(trainable, batch, generator, state.step)
                    scale = task.loss_normalizer * config.grad_accumulation
                    (terms.loss.float().mean() / scale).backward()
                for key, value in terms.means().items():
                    sums[key] = sums.get(key, 0.0) + value / config.grad_accumulation
            clip = optim_config.grad_clip or math.inf
            grad_norm = float(torch.nn.utils.clip_grad_norm_(parameters, clip))  # same on all ranks
            clipped = grad_norm > clip
            # The logged terms become means over the global batch; a non-finite loss on any rank
            # makes them non-finite on every rank, so all ranks skip the same steps.
            sums = context.mean_over_ranks(sums)
            if not (math.isfinite(sums["loss"]) and math.isfinite(grad_norm)):
                state.skipped_steps += 1
                state.consecutive_nonfinite += 1
                if context.is_main:
                    tqdm.write(
                        f"non-finite loss or gradient at step {state.step}: step skipped "
                        f"({state.consecutive_nonfinite} in a row)"
                    )
                if state.consecutive_nonfinite >= config.max_nonfinite_steps:
                    if log is not None:
                        log.close()
                    good = list_checkpoints(checkpoints)
                    where = good[-1].path if good else "none written yet"
                    raise NonFiniteLossError(
                        f"{state.consecutive_nonfinite} consecutive steps had a non-finite loss "
                        f"or gradient; stopping. Last good checkpoint: {where}. Try a lower "
                        "optim.lr, train.precision=fp32 or a smaller optim.grad_clip."
                    )
                optimizer.zero_grad(set_to_none=True)
                continue
            optimizer.step()
            update_ema(ema, model, ema_decay_at(state.step, config.ema_decay))
            state.step += 1
            state.consecutive_nonfinite = 0
            state.elapsed_seconds += time.perf_counter() - step_start
            window.add(sums, config.batch_size, grad_norm, clipped)
            bar.update(1)
            if state.step % config.log_every == 0 or state.step == config.max_steps:
                log_window()
            if config.eval_every and state.step % config.eval_every == 0:
                evaluate()
            if config.checkpoint_every and state.step % config.checkpoint_every == 0:
                checkpoint()
    bar.close()
    # The checkpoint first: a kill during the final evaluation then loses no training (and the
    # saved RNG state is the one a longer run would continue from at this step).
    if context.any(state.step != last_saved_step or not list_checkpoints(checkpoints)):
        checkpoint()
    if stopped_by != "signal" and last_eval_step != state.step:
        evaluate()
    if log is not None:
        log.close()
    return TrainResult(step=state.step, stopped_by=stopped_by, last_eval=last_eval)
