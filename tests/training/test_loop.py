"""The shared loop: exact resumption, non-finite steps, signals, logs and plots."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tests.training.toy import ToyTask
from unified_latents.runs.presets_common import tiny_training
from unified_latents.training.checkpoint import (
    CheckpointError,
    list_checkpoints,
    read_latest_checkpoint,
)
from unified_latents.training.config import TrainConfig
from unified_latents.training.loop import NonFiniteLossError, TrainResult, train
from unified_latents.training.optim import OptimConfig

# The tiny presets' settings (EMA 0.9, a checkpoint at every evaluation, no progress bar), smaller.
CONFIG = replace(
    tiny_training(max_steps=12, eval_every=6), batch_size=8, log_every=1, keep_checkpoints=5
)
OPTIM = OptimConfig(lr=1e-2, warmup_steps=3)


def train_toy(task: ToyTask, run_dir: Path, config: TrainConfig = CONFIG) -> TrainResult:
    return train(
        task,
        run_dir=run_dir,
        train_config=config,
        optim_config=OPTIM,
        config_dict={"kind": "toy"},
        device=torch.device("cpu"),
    )


def run(task: ToyTask, run_dir: Path, config: TrainConfig = CONFIG) -> list[float]:
    """The train losses logged by `train_toy`."""
    train_toy(task, run_dir, config)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if r["split"] == "train"]


def test_resume_continues_exactly(tmp_path: Path) -> None:
    straight = run(ToyTask(), tmp_path / "straight")
    first_half = run(ToyTask(), tmp_path / "resumed", replace(CONFIG, max_steps=6))
    resumed = run(ToyTask(), tmp_path / "resumed")  # fresh process state, same run dir
    assert first_half == straight[:6]
    assert resumed == straight  # the log holds steps 1..12 with identical losses
    a = read_latest_checkpoint(tmp_path / "straight" / "checkpoints")
    b = read_latest_checkpoint(tmp_path / "resumed" / "checkpoints")
    assert a.state["training"]["step"] == b.state["training"]["step"] == 12
    for key in a.model:
        assert torch.equal(a.model[key], b.model[key]), key
        assert torch.equal(a.ema[key], b.ema[key]), key


def test_outputs_config_logs_and_plots(tmp_path: Path) -> None:
    task = ToyTask()
    run(task, tmp_path)
    assert task.evaluations == [6, 12]
    assert (tmp_path / "plots" / "loss.png").stat().st_size > 0
    assert list((tmp_path / "tensorboard").iterdir())
    steps = [c.step for c in list_checkpoints(tmp_path / "checkpoints")]
    assert steps == [6, 12]
    state = read_latest_checkpoint(tmp_path / "checkpoints").state
    assert state["config"] == {"kind": "toy"} and state["version"]


def test_starting_a_finished_run_again_reuses_its_final_evaluation(tmp_path: Path) -> None:
    first = ToyTask()
    done = train_toy(first, tmp_path)
    again = ToyTask()
    result = train_toy(again, tmp_path)
    assert first.evaluations == [6, 12] and again.evaluations == []
    assert result.step == 12 and result.last_eval == done.last_eval
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["split"] == "eval"] == [6, 12]


def test_nonfinite_steps_are_skipped_then_abort(tmp_path: Path) -> None:
    task = ToyTask(nan_at_steps=frozenset({3, 4}))
    run(task, tmp_path / "skip")
    state = read_latest_checkpoint(tmp_path / "skip" / "checkpoints").state
    assert state["training"]["skipped_steps"] == 2 and state["training"]["step"] == 12

    always = ToyTask(nan_at_steps=frozenset(range(9, 100)))
    config = replace(CONFIG, max_nonfinite_steps=4)
    with pytest.raises(NonFiniteLossError, match=r"Last good checkpoint: .*step_00000006"):
        run(always, tmp_path / "abort", config)
    # the last good checkpoint is intact and loadable
    assert read_latest_checkpoint(tmp_path / "abort" / "checkpoints").state["training"]["step"] == 6


def test_sigterm_writes_a_loadable_checkpoint(tmp_path: Path) -> None:
    task = ToyTask()
    original = task.loss

    def loss_then_signal(module, batch, generator, step):  # type: ignore[no-untyped-def]
        if task.calls == 4:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(module, batch, generator, step)

    task.loss = loss_then_signal  # type: ignore[method-assign]
    result = train_toy(task, tmp_path)
    assert result.stopped_by == "signal"
    loaded = read_latest_checkpoint(tmp_path / "checkpoints")
    assert loaded.state["training"]["step"] == result.step == 5
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored


def signal_at_call(task: ToyTask, call: int) -> None:
    """SIGTERM this process during the task's `call`-th loss evaluation."""
    original = task.loss

    def loss_then_signal(module, batch, generator, step):  # type: ignore[no-untyped-def]
        if task.calls == call - 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(module, batch, generator, step)

    task.loss = loss_then_signal  # type: ignore[method-assign]


def train_records(run_dir: Path) -> dict[int, float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return {r["step"]: r["loss"] for r in map(json.loads, lines) if r["split"] == "train"}


def test_a_stop_logs_the_steps_since_the_last_record(tmp_path: Path) -> None:
    """Issue 15: after SIGTERM at step 7 with a record every 5 steps, steps 6-7 were never
    logged (the record after the resume averaged only the steps since the restart)."""
    every_step = run(ToyTask(), tmp_path / "every", replace(CONFIG, eval_every=0))
    config = replace(CONFIG, log_every=5, eval_every=0, checkpoint_every=0)
    task = ToyTask()
    signal_at_call(task, 7)
    run(task, tmp_path / "stopped", config)
    run(ToyTask(), tmp_path / "stopped", config)  # resumes at step 7, runs to 12
    records = train_records(tmp_path / "stopped")
    assert sorted(records) == [5, 7, 10, 12]
    windows = {5: range(1, 6), 7: range(6, 8), 10: range(8, 11), 12: range(11, 13)}
    for step, window in windows.items():
        expected = sum(every_step[s - 1] for s in window) / len(window)
        assert records[step] == pytest.approx(expected, rel=1e-6), step


def test_a_checkpoint_that_does_not_fit_the_model_is_a_checkpoint_error(tmp_path: Path) -> None:
    run(ToyTask(), tmp_path, replace(CONFIG, max_steps=6))
    other = ToyTask()
    other.model.linear = torch.nn.Linear(4, 8)  # another config: other shapes
    other.model.head = torch.nn.Linear(8, 1)
    with pytest.raises(CheckpointError, match=r"step_00000006 does not fit this model \(.*size"):
        run(other, tmp_path)


def test_the_last_steps_are_saved_before_the_final_evaluation(tmp_path: Path) -> None:
    """A kill during the (possibly long) final evaluation must not lose the steps since the
    last periodic checkpoint."""
    task = ToyTask()

    def killed_at_the_end(ema: torch.nn.Module, step: int, run_dir: Path) -> dict[str, float]:
        if step == 8:
            raise KeyboardInterrupt  # what a second Ctrl-C or a kill looks like from here
        return {}

    task.evaluate = killed_at_the_end  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        run(task, tmp_path, replace(CONFIG, max_steps=8))
    assert [c.step for c in list_checkpoints(tmp_path / "checkpoints")] == [6, 8]
