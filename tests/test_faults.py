"""Fault behaviour of a real `ul train-autoencoder --preset tiny` run: SIGTERM, kill -9, non-finite
losses, a corrupt latest checkpoint and a folder with unreadable images.

Signals need a real process, so those runs are subprocesses (`python -m unified_latents.cli`,
one OpenMP thread so that they do not fight pytest for the cores); the rest call `main`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from unified_latents.cli import main
from unified_latents.commands import INTERRUPTED_EXIT_CODE
from unified_latents.runs.autoencoder import AutoencoderTask
from unified_latents.training.checkpoint import (
    list_checkpoints,
    read_checkpoint,
    read_latest_checkpoint,
)
from unified_latents.training.metrics_log import read_metrics

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# Runs that only stop when told to: no evaluation, a train record every step.
ENDLESS = ["--set", "train.max_steps=100000", "--set", "train.eval_every=100000"]
EVERY_STEP = ["--set", "train.log_every=1"]


def tiny(run_dir: Path, *settings: str) -> list[str]:
    return ["train-autoencoder", "--preset", "tiny", "--run-dir", str(run_dir), *settings]


def start(arguments: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "unified_latents.cli", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(process: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def train_losses(run_dir: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run_dir) if r["split"] == "train"}


def wait_for_step(run_dir: Path, step: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while max(train_losses(run_dir), default=0) < step:
        if process.poll() is not None:
            raise AssertionError(f"the run ended early: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"no train record for step {step} within 120 s")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def sigterm_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int, str]]:
    """A run stopped by SIGTERM after ≥ 6 steps, with a periodic checkpoint at step 4."""
    run_dir = tmp_path_factory.mktemp("sigterm") / "run"
    process = start(tiny(run_dir, *ENDLESS, *EVERY_STEP, "--set", "train.checkpoint_every=4"))
    wait_for_step(run_dir, 6, process)
    process.send_signal(signal.SIGTERM)
    code, out, err = finish(process)
    yield run_dir, code, out + err


def test_sigterm_writes_a_checkpoint_and_exits_cleanly(sigterm_run: tuple[Path, int, str]) -> None:
    run_dir, code, output = sigterm_run
    assert code == INTERRUPTED_EXIT_CODE == 75, output[-2000:]  # not 0: the run is not finished
    assert "received SIGTERM: saving a checkpoint, then stopping" in output
    match = re.search(r"stopped at step (\d+) \(signal\)", output)
    assert match, output[-2000:]
    step = int(match.group(1))
    assert step >= 6 and "Traceback" not in output
    loaded = read_latest_checkpoint(run_dir / "checkpoints")
    assert loaded.path.name == f"step_{step:08d}" and loaded.state["training"]["step"] == step


def test_corrupt_latest_checkpoint_falls_back_when_resuming(
    sigterm_run: tuple[Path, int, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(sigterm_run[0], run_dir)
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    assert checkpoints[0].step == 4
    (checkpoints[-1].path / "model.safetensors").write_bytes(b"\0" * 100)  # torn or bit-rotten
    with pytest.warns(UserWarning, match=rf"{checkpoints[-1].path.name} is unreadable"):
        code = main(tiny(run_dir, "--set", "train.max_steps=6", "--set", "train.eval_every=0"))
    assert code == 0
    assert f"resuming from {checkpoints[-2].path} (step {checkpoints[-2].step})" in (
        capsys.readouterr().out
    )
    # the unreadable one is set aside (kept for inspection), so it cannot push good checkpoints
    # out of the last K; the newest checkpoint is now the resumed run's
    assert (run_dir / "checkpoints" / f"unreadable_{checkpoints[-1].path.name}").is_dir()
    assert read_latest_checkpoint(run_dir / "checkpoints").state["training"]["step"] == 6


def test_kill_9_loses_only_the_steps_since_the_last_checkpoint(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    settings = [*EVERY_STEP, "--set", "train.checkpoint_every=10"]
    process = start(tiny(run_dir, *ENDLESS, *settings))
    wait_for_step(run_dir, 13, process)
    process.send_signal(signal.SIGSTOP)  # freeze, so the log read below is what the run reached
    before = train_losses(run_dir)
    process.kill()
    process.wait()
    complete = list_checkpoints(run_dir / "checkpoints")
    for checkpoint in complete:
        read_checkpoint(checkpoint.path)  # every checkpoint that looks complete is complete
    last = complete[-1].step
    assert last >= 10 and max(before) > last
    # What a kill during a checkpoint write or deletion leaves behind is never picked up.
    (run_dir / "checkpoints" / f".tmp_step_{last + 1:08d}_123").mkdir()
    (run_dir / "checkpoints" / f".tmp_step_{last + 1:08d}_123" / "model.safetensors").touch()
    (run_dir / "checkpoints" / f"step_{last + 2:08d}").mkdir()  # no state.json
    target = max(before) + 1
    code, out, err = finish(start(tiny(run_dir, *settings, "--set", f"train.max_steps={target}")))
    assert code == 0, err[-2000:]
    assert f"resuming from {complete[-1].path} (step {last})" in out + err
    after = train_losses(run_dir)
    assert sorted(after) == list(range(1, target + 1))  # one record per step, none repeated
    # the steps trained twice (after the checkpoint, before the kill) came out identical
    assert {step: after[step] for step in before} == before
    assert not list((run_dir / "checkpoints").glob(".tmp_*"))  # stale temporaries cleaned


def poison_losses(monkeypatch: pytest.MonkeyPatch, calls: range) -> None:
    """Make the loss NaN on the given (1-based) loss calls, as a blown-up network would."""
    original = AutoencoderTask.loss
    count = {"calls": 0}

    def poisoned(self: AutoencoderTask, *args: Any) -> Any:
        terms = original(self, *args)
        count["calls"] += 1
        if count["calls"] in calls:
            return dataclasses.replace(terms, loss=terms.loss * float("nan"))
        return terms

    monkeypatch.setattr(AutoencoderTask, "loss", poisoned)


def test_nonfinite_steps_are_skipped_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    poison_losses(monkeypatch, range(5, 7))  # two bad steps, then training recovers
    code = main(tiny(tmp_path, "--set", "train.max_steps=8", "--set", "train.eval_every=0"))
    assert code == 0
    assert "non-finite loss or gradient at step 4: step skipped (2 in a row)" in (
        capsys.readouterr().out
    )
    state = read_latest_checkpoint(tmp_path / "checkpoints").state["training"]
    assert state["step"] == 8 and state["skipped_steps"] == 2


def test_persistent_nonfinite_loss_aborts_with_one_line_and_keeps_the_last_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    poison_losses(monkeypatch, range(5, 10**6))
    settings = ["--set", "train.checkpoint_every=4", "--set", "train.max_nonfinite_steps=3"]
    code = main(tiny(tmp_path, *ENDLESS, *settings))
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("ul train-autoencoder: error: 3 consecutive steps had a non-finite")
    assert "Last good checkpoint: " in err and err.count("step_00000004") == 1
    assert read_latest_checkpoint(tmp_path / "checkpoints").state["training"]["step"] == 4


def write_image_folder(root: Path) -> list[str]:
    """30 good 8×8 PNGs in each of two class folders, plus one bad file of each kind;
    returns the bad files' names."""
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for index in range(30):
            pixels = rng.integers(0, 256, (8, 8), dtype=np.uint8)
            Image.fromarray(pixels, mode="L").save(root / label / f"{index:02d}.png")
    noise = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), mode="RGB")
    noise.save(root / "a" / "whole.png")
    encoded = (root / "a" / "whole.png").read_bytes()
    (root / "a" / "whole.png").unlink()
    (root / "a" / "truncated.png").write_bytes(encoded[: len(encoded) // 2])
    (root / "a" / "corrupt.png").write_bytes(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
    (root / "b" / "empty.png").touch()
    (root / "b" / "not_an_image.jpg").write_text("this is a text file with an image suffix\n")
    (root / "b" / "notes.txt").write_text("not an image suffix: not listed, not counted\n")
    return ["truncated.png", "corrupt.png", "empty.png", "not_an_image.jpg"]


def test_image_folder_trains_on_good_files_and_names_the_bad_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "images"
    bad = write_image_folder(root)
    folder = ["--set", "data.name=folder", "--set", f"data.root={root}"]
    # the default limit (1% unreadable) is exceeded: one clear line, before any training
    with pytest.warns(UserWarning):
        code = main(tiny(tmp_path / "strict", *folder))
    err = capsys.readouterr().err
    assert code == 2 and "data.max_bad_fraction" in err and "Traceback" not in err

    run_dir = tmp_path / "run"
    arguments = tiny(run_dir, *folder, "--set", "data.max_bad_fraction=0.1")
    settings = ["--set", "train.batch_size=8", "--set", "train.max_steps=15"]
    code, _, err = finish(start([*arguments, *settings, "--set", "train.eval_every=15"]))
    assert code == 0, err[-2000:]
    for name in bad:
        assert re.search(rf"(skipping|e\.g\.) .*{re.escape(name)}", err), (name, err[-3000:])
    assert "notes.txt" not in err
    record = json.loads((run_dir / "config.json").read_text())["config"]["run"]["data"]
    assert record["name"] == "folder"
    evals = [r for r in read_metrics(run_dir) if r["split"] == "eval"]
    assert evals and np.isfinite(evals[-1]["psnr_db"])
