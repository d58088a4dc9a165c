"""One training per run directory (issue 15: two trainings on one directory both ran,
interleaving metrics.jsonl and overwriting each other's checkpoints)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_faults import ENDLESS, finish, start, tiny, wait_for_step
from unified_latents.cli import main
from unified_latents.runs import lock as run_lock
from unified_latents.runs.directory import RunError
from unified_latents.runs.lock import LOCK_FILE, RunLock
from unified_latents.training.metrics_log import read_metrics


def dead_pid() -> int:
    """The PID of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_held_lock_refuses_a_second_holder_until_released(tmp_path: Path) -> None:
    with RunLock(tmp_path) as held:
        assert (tmp_path / LOCK_FILE).read_text().split()[0] == str(os.getpid())
        with pytest.raises(RunError, match=rf"in use by another training \(PID {os.getpid()}"):
            RunLock(tmp_path).acquire()
        assert held.path.exists()  # the refused attempt leaves the owner's lock alone
    assert not (tmp_path / LOCK_FILE).exists()
    RunLock(tmp_path).acquire().release()


def test_the_lock_is_released_on_an_exception_and_an_unused_directory_removed(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "new"
    with pytest.raises(ValueError, match="boom"), RunLock(run_dir):
        assert run_dir.is_dir()
        raise ValueError("boom")
    assert not run_dir.exists()  # created by the lock, nothing else written: removed
    kept = tmp_path / "kept"
    with RunLock(kept):
        (kept / "config.json").write_text("{}")
    assert sorted(path.name for path in kept.iterdir()) == ["config.json"]


@pytest.mark.parametrize("with_flock", [True, False])
def test_a_stale_lock_of_a_dead_process_is_taken_over(
    with_flock: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not with_flock:  # the PID check used where fcntl does not exist (Windows)
        monkeypatch.setattr(run_lock, "fcntl", None)
    pid = dead_pid()
    (tmp_path / LOCK_FILE).write_text(f"{pid} {os.uname().nodename}\n")
    with pytest.warns(UserWarning, match=rf"stale lock .* PID {pid}"), RunLock(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text().split()[0] == str(os.getpid())


def test_without_flock_a_live_pid_keeps_its_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_lock, "fcntl", None)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / LOCK_FILE).write_text(f"{sleeper.pid} {os.uname().nodename}\n")
        with pytest.raises(RunError, match=f"PID {sleeper.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize(
    ("command", "preset"),
    [("train-autoencoder", "tiny"), ("train-end-to-end", "tiny"), ("train-base", "pixel-tiny")],
)
def test_every_training_command_refuses_a_locked_run_directory(
    command: str, preset: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with RunLock(tmp_path):
        assert main([command, "--preset", preset, "--run-dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert f"in use by another training (PID {os.getpid()}" in error
    assert len(error.strip().splitlines()) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == []  # nothing written


def test_a_second_training_on_a_running_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    first = start(tiny(run_dir, *ENDLESS, "--set", "train.log_every=1"))
    try:
        wait_for_step(run_dir, 2, process=first)
        assert main(tiny(run_dir, "--set", "train.max_steps=3")) == 2
        assert f"(PID {first.pid}" in capsys.readouterr().err
    finally:
        first.send_signal(signal.SIGTERM)
        code, _, err = finish(first)
    assert code == 75, err[-2000:]
    assert not (run_dir / LOCK_FILE).exists()  # released when the first training stopped
    steps = [record["step"] for record in read_metrics(run_dir) if record["split"] == "train"]
    assert steps == list(range(1, steps[-1] + 1))  # one writer: every step logged once
