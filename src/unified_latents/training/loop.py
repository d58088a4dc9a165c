"""The one training loop shared by every stage (stage 1, stage 2, end-to-end).

It owns the optimizer, warm-up, gradient clipping and accumulation, EMA, bf16 autocast, DDP,
periodic evaluation, metrics, plots, atomic checkpoints and exact resumption; a `TrainingTask`
supplies the model, the data and the loss. Re-running on a run directory resumes from its newest
readable checkpoint with the same weights, optimizer moments, data position and RNG state.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from unified_latents.networks.checkpointing import set_activation_checkpointing
from unified_latents.training.checkpoint import list_checkpoints
from unified_latents.training.config import TrainConfig
from unified_latents.training.distributed import DistributedContext
from unified_latents.training.ema import ema_decay_at, make_ema, update_ema
from unified_latents.training.metrics_log import MetricsLog, TrainWindow, read_metrics
from unified_latents.training.optim import (
    OptimConfig,
    build_optimizer,
    learning_rate,
    set_learning_rate,
)
from unified_latents.training.precision import autocast, resolve_precision
from unified_latents.training.signals import stop_on_signals
from unified_latents.training.state import (
    Resumable,
    TrainingState,
    resume_state,
    save_state,
)
from unified_latents.training.task import TrainingTask
from unified_latents.training.wrapping import explain_compile_errors, trainable_model
from unified_latents.visualize import plot_metrics


class NonFiniteLossError(RuntimeError):
    """Too many consecutive steps had a NaN/inf loss or gradient."""


@dataclass
class TrainResult:
    step: int
    stopped_by: str  # "max_steps", "time_budget" or "signal"
    last_eval: dict[str, float]


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
    training = Training(
        task,
        run_dir,
        train_config,
        optim_config,
        config_dict,
        device,
        context or DistributedContext(),
    )
    if before_writing is not None:
        before_writing()
    training.resume()
    return training.run()


class Training:
    """One call of `train`: the model, EMA, optimizer, RNG, data stream and counters its steps
    share, built in this order (a resume restores each of them)."""

    def __init__(
        self,
        task: TrainingTask,
        run_dir: Path,
        config: TrainConfig,
        optim_config: OptimConfig,
        config_dict: Mapping[str, Any],
        device: torch.device,
        context: DistributedContext,
    ) -> None:
        self.task, self.run_dir, self.config, self.optim_config = (
            task,
            run_dir,
            config,
            optim_config,
        )
        self.config_dict, self.device, self.context = config_dict, device, context
        self.model = task.model.to(device)
        self.precision = resolve_precision(config.precision, device)  # warns if bf16 is emulated
        set_activation_checkpointing(self.model, config.activation_checkpointing)
        self.ema = make_ema(self.model)
        self.optimizer = build_optimizer(self.model, optim_config)
        seed = config.seed * 1000 + context.rank
        self.generator = torch.Generator(device=device).manual_seed(seed)
        micro_batch = config.micro_batch_size(context.world_size)
        self.stream = task.batches(micro_batch, config.seed, context.rank, context.world_size)
        self.state = TrainingState()
        self.checkpoints = run_dir / "checkpoints"
        self.resumable = Resumable(
            self.model, self.ema, self.optimizer, self.generator, self.stream
        )

    def resume(self) -> None:
        """Restore everything from the newest readable checkpoint (if any), then set up what
        training needs beyond the weights: DDP, compile, the metrics log, the progress bar."""
        context = self.context
        self.state = resume_state(self.checkpoints, self.resumable, context)
        self.trainable = trainable_model(
            self.model, self.device, context, compile=self.config.compile
        )
        self.log = MetricsLog(self.run_dir, self.state.step) if context.is_main else None
        self.parameters = [p for p in self.model.parameters() if p.requires_grad]
        self.last_eval: dict[str, float] = {}
        self.last_eval_step: int | None = None
        # A run resumed at a step it already evaluated (e.g. a finished run started again)
        # reuses that evaluation instead of repeating it.
        recorded = context.broadcast_object(self.recorded_eval() if context.is_main else None)
        if recorded is not None:
            self.last_eval, self.last_eval_step = recorded, self.state.step
        self.window = TrainWindow()
        self.last_save_time, self.last_saved_step = time.perf_counter(), self.state.step
        budget = self.config.time_budget_minutes
        self.bar = tqdm(
            # under a time budget the step count is unknown: no total, so no misleading ETA
            total=None if budget else self.config.max_steps,
            initial=self.state.step,
            disable=not (self.config.progress and context.is_main),
            dynamic_ncols=True,
            desc="train",
        )

    def checkpoint(self) -> None:
        save_state(
            self.checkpoints,
            self.state,
            self.resumable,
            config_dict=self.config_dict,
            keep=self.config.keep_checkpoints,
            context=self.context,
        )
        self.last_save_time, self.last_saved_step = time.perf_counter(), self.state.step

    def recorded_eval(self) -> dict[str, float] | None:
        """The metrics log's evaluation at the resumed step, if it has one."""
        if self.state.step == 0:
            return None
        for record in reversed(read_metrics(self.run_dir)):
            if record.get("split") == "eval" and record.get("step") == self.state.step:
                return {k: v for k, v in record.items() if k not in ("step", "split")}
        return None

    def evaluate(self) -> None:
        """On rank 0 only; the other ranks wait in the broadcast of the results."""
        step = self.state.step
        if self.context.is_main:
            self.ema.eval()
            self.last_eval = self.task.evaluate(self.ema, step, self.run_dir)
            assert self.log is not None
            self.log.log(step, "eval", self.last_eval)
            records = read_metrics(self.run_dir)
            for stem, keys in self.task.plots.items():
                plot_metrics(records, keys, self.run_dir / "plots" / f"{stem}.png", stem)
            summary = ", ".join(f"{k}={v:.4g}" for k, v in self.last_eval.items())
            tqdm.write(f"[eval step {step}] {summary}")
        self.last_eval = self.context.broadcast_object(self.last_eval)
        self.last_eval_step = step

    def log_window(self) -> None:
        """A train record of the steps since the last one (their mean terms)."""
        values = self.task.summarize(self.window.means())
        values |= {"lr": self.optimizer.param_groups[0]["lr"], **self.window.rates()}
        values["skipped_steps"] = float(self.state.skipped_steps)
        values["bf16"] = float(self.precision == "bf16")  # the resolved train.precision
        if self.log is not None:
            self.log.log(self.state.step, "train", values)
        keys = [k for k in self.task.progress_keys if k in values]
        self.bar.set_postfix({k: f"{values[k]:.4g}" for k in keys})
        self.window.reset()

    def gradients(self) -> tuple[dict[str, float], float]:
        """Forward and backward of `grad_accumulation` micro-batches: the mean loss terms over
        the global batch and the gradient norm (before clipping, the same on all ranks)."""
        config, sums = self.config, dict[str, float]()
        for _ in range(config.grad_accumulation):
            batch = next(self.stream)
            with explain_compile_errors(config.compile):
                with autocast(self.device, self.precision):
                    terms = self.task.loss(self.trainable, batch, self.generator, self.state.step)
                scale = self.task.loss_normalizer * config.grad_accumulation
                (terms.loss.float().mean() / scale).backward()
            for key, value in terms.means().items():
                sums[key] = sums.get(key, 0.0) + value / config.grad_accumulation
        clip = self.optim_config.grad_clip or math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.parameters, clip))
        # The logged terms become means over the global batch; a non-finite loss on any rank
        # makes them non-finite on every rank, so all ranks skip the same steps.
        return self.context.mean_over_ranks(sums), grad_norm

    def skip_step(self) -> None:
        """A non-finite loss or gradient: no update; too many in a row stop the run."""
        state = self.state
        state.skipped_steps += 1
        state.consecutive_nonfinite += 1
        if self.context.is_main:
            tqdm.write(
                f"non-finite loss or gradient at step {state.step}: step skipped "
                f"({state.consecutive_nonfinite} in a row)"
            )
        if state.consecutive_nonfinite >= self.config.max_nonfinite_steps:
            if self.log is not None:
                self.log.close()
            good = list_checkpoints(self.checkpoints)
            where = good[-1].path if good else "none written yet"
            raise NonFiniteLossError(
                f"{state.consecutive_nonfinite} consecutive steps had a non-finite loss "
                f"or gradient; stopping. Last good checkpoint: {where}. Try a lower "
                "optim.lr, train.precision=fp32 or a smaller optim.grad_clip."
            )
        self.optimizer.zero_grad(set_to_none=True)

    def step(self) -> None:
        """One optimizer step (or a skipped one), then logging, evaluation and checkpoints as
        they fall due."""
        config, state = self.config, self.state
        step_start = time.perf_counter()
        lr = learning_rate(state.step, self.optim_config, config.max_steps)
        set_learning_rate(self.optimizer, lr)
        self.optimizer.zero_grad(set_to_none=True)
        sums, grad_norm = self.gradients()
        if not (math.isfinite(sums["loss"]) and math.isfinite(grad_norm)):
            self.skip_step()
            return
        self.optimizer.step()
        update_ema(self.ema, self.model, ema_decay_at(state.step, config.ema_decay))
        state.step += 1
        state.consecutive_nonfinite = 0
        state.elapsed_seconds += time.perf_counter() - step_start
        clipped = grad_norm > (self.optim_config.grad_clip or math.inf)
        self.window.add(sums, config.batch_size, grad_norm, clipped)
        self.bar.update(1)
        if state.step % config.log_every == 0 or state.step == config.max_steps:
            self.log_window()
        if config.eval_every and state.step % config.eval_every == 0:
            self.evaluate()
        if config.checkpoint_every and state.step % config.checkpoint_every == 0:
            self.checkpoint()

    def run(self) -> TrainResult:
        config, context, state = self.config, self.context, self.state
        budget_seconds = config.time_budget_minutes * 60.0
        stopped_by = "max_steps"
        with stop_on_signals() as signals:
            while state.step < config.max_steps:
                # Decisions from per-rank clocks and signals are OR-ed over ranks in one
                # collective, so every rank breaks, checkpoints and evaluates at the same steps.
                minutes = (time.perf_counter() - self.last_save_time) / 60.0
                stop, out_of_time, save_due = context.any_each(
                    signals["stop"],
                    bool(budget_seconds) and state.elapsed_seconds >= budget_seconds,
                    bool(config.checkpoint_minutes) and minutes >= config.checkpoint_minutes,
                )
                if stop or out_of_time:
                    stopped_by = "signal" if stop else "time_budget"
                    if self.window.steps:  # the steps since the last record: none unlogged
                        self.log_window()
                    break
                if save_due and state.step != self.last_saved_step:
                    self.checkpoint()
                self.step()
        self.bar.close()
        # The checkpoint first: a kill during the final evaluation then loses no training (and
        # the saved RNG state is the one a longer run would continue from at this step).
        if context.any(
            state.step != self.last_saved_step or not list_checkpoints(self.checkpoints)
        ):
            self.checkpoint()
        if stopped_by != "signal" and self.last_eval_step != state.step:
            self.evaluate()
        if self.log is not None:
            self.log.close()
        return TrainResult(step=state.step, stopped_by=stopped_by, last_eval=self.last_eval)
