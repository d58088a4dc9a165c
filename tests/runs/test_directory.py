"""Run directories with damaged or foreign files (issue 15): a corrupt state.json or config.json
falls back to the previous good checkpoint or fails with one line, a checkpoint of another
config is named with the field that differs, and an unstarted run takes a corrected config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from unified_latents.cli import main
from unified_latents.commands.reconstruct import reconstruct
from unified_latents.config import ConfigError
from unified_latents.runs.autoencoder import AutoencoderRunConfig
from unified_latents.runs.directory import CONFIG_FILE, latest_training_state, load_run
from unified_latents.training.checkpoint import read_latest_checkpoint

QUIET = ["--set", "train.eval_every=0"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def tiny(run_dir: Path, *settings: str) -> list[str]:
    return ["train-autoencoder", "--preset", "tiny", "--run-dir", str(run_dir), *settings]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny autoencoder run with checkpoints at steps 20 and 40."""
    run_dir = tmp_path_factory.mktemp("runs") / "ae"
    torch.set_num_threads(1)
    assert main(tiny(run_dir, "--set", "train.eval_every=40")) == 0
    return run_dir


@pytest.fixture
def run_dir(trained: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def edit_state(run_dir: Path, step: int, drop: str) -> None:
    path = run_dir / "checkpoints" / f"step_{step:08d}" / "state.json"
    state = json.loads(path.read_text())
    del state[drop]
    path.write_text(json.dumps(state))


@pytest.mark.parametrize("damage", ["not json", "optimizer", "training"])
def test_a_damaged_state_json_falls_back_to_the_previous_checkpoint(
    damage: str, run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was `JSONDecodeError` or `KeyError: 'optimizer'` with a traceback."""
    if damage == "not json":
        (run_dir / "checkpoints" / "step_00000040" / "state.json").write_text('{"step": 4')
    else:
        edit_state(run_dir, 40, damage)
    with pytest.warns(UserWarning, match="step_00000040 is unreadable"):
        assert main(tiny(run_dir, "--set", "train.max_steps=45", *QUIET)) == 0
    assert "resuming from" in capsys.readouterr().out
    assert read_latest_checkpoint(run_dir / "checkpoints").state["step"] == 45
    assert (run_dir / "checkpoints" / "unreadable_step_00000040").is_dir()


def test_a_state_json_without_the_config_is_skipped_when_loading_a_run(run_dir: Path) -> None:
    """Was `KeyError: 'config'` in `ul reconstruct` / `ul sample` / `ul evaluate`."""
    edit_state(run_dir, 40, "config")
    with pytest.warns(UserWarning, match="step_00000040 is unreadable"):
        _, loaded = load_run(run_dir, "autoencoder", AutoencoderRunConfig)
    assert loaded.path.name == "step_00000020"


def test_a_damaged_state_json_is_skipped_by_latest_training_state(run_dir: Path) -> None:
    (run_dir / "checkpoints" / "step_00000040" / "state.json").write_text("{")
    newest = latest_training_state(run_dir)
    assert newest is not None and newest[0].name == "step_00000020" and newest[1]["step"] == 20


@pytest.mark.parametrize("content", ['{"version": "0.1"}', "garbage", None])
def test_a_damaged_or_missing_config_json_is_rebuilt_from_the_checkpoint(
    content: str | None, run_dir: Path
) -> None:
    """Was `KeyError: 'config'` / `JSONDecodeError`; the checkpoints store the config too."""
    path = run_dir / CONFIG_FILE
    if content is None:
        path.unlink()
    else:
        path.write_text(content)
    with pytest.warns(UserWarning, match=r"config\.json is (unreadable|missing); using"):
        assert main(tiny(run_dir, "--set", "train.max_steps=42", *QUIET)) == 0
    assert json.loads(path.read_text())["config"]["run"]["train"]["max_steps"] == 42


def test_a_damaged_config_json_without_checkpoints_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / CONFIG_FILE).write_text("garbage")
    assert main(["evaluate", "--run", str(tmp_path), "--no-fid"]) == 2
    error = capsys.readouterr().err
    assert "config.json is unreadable" in error and len(error.strip().splitlines()) == 1


def test_a_checkpoint_of_another_config_is_refused_naming_the_field(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was a `size mismatch` traceback on resume, and `ul reconstruct` silently used it."""
    other = tmp_path / "other"
    wide = ["--set", "model.encoder.latent_channels=4"]
    assert main(tiny(other, *wide, "--set", "train.max_steps=20", *QUIET)) == 0
    shutil.copytree(trained / "checkpoints" / "step_00000040", other / "checkpoints" / "s40")
    (other / "checkpoints" / "s40").rename(other / "checkpoints" / "step_00000040")
    capsys.readouterr()
    assert main(tiny(other, *wide, "--set", "train.max_steps=50", *QUIET)) == 2
    error = capsys.readouterr().err
    assert "step_00000040 was trained with a different config" in error
    assert "model.encoder.latent_channels: 2 → 4" in error and "Traceback" not in error
    assert main(["reconstruct", "--run", str(other), "--num", "4", "--steps", "2"]) == 2
    error = capsys.readouterr().err
    assert "step_00000040 was trained with another config" in error
    assert "model.encoder.latent_channels" in error and len(error.strip().splitlines()) == 1


def test_a_run_without_checkpoints_takes_a_corrected_config(tmp_path: Path) -> None:
    """A training that failed before its first checkpoint left config.json behind; nothing is
    trained yet, so the corrected re-run starts instead of being refused."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    failed = {"kind": "autoencoder", "run": {"data": {"name": "digits", "max_bad_fraction": 0}}}
    (run_dir / CONFIG_FILE).write_text(json.dumps({"config": failed}))
    with pytest.warns(UserWarning, match="no checkpoint yet: starting it again"):
        assert main(tiny(run_dir, "--set", "train.max_steps=2", *QUIET)) == 0
    assert read_latest_checkpoint(run_dir / "checkpoints").state["step"] == 2


def test_a_damaged_config_json_without_checkpoints_is_replaced_by_a_training(
    tmp_path: Path,
) -> None:
    (tmp_path / CONFIG_FILE).write_text('{"config": {"kind": "autoenc')  # a torn write
    assert main(tiny(tmp_path, "--set", "train.max_steps=2", *QUIET)) == 0
    assert json.loads((tmp_path / CONFIG_FILE).read_text())["config"]["kind"] == "autoencoder"
    (tmp_path / "checkpoints").rename(tmp_path / "moved")
    other = {"config": {"kind": "base", "run": {}}}
    (tmp_path / CONFIG_FILE).write_text(json.dumps(other))
    assert main(tiny(tmp_path, "--set", "train.max_steps=2", *QUIET)) == 2  # another kind


def test_reconstruct_refuses_zero_steps_instead_of_using_the_default(run_dir: Path) -> None:
    with pytest.raises(ConfigError, match="must be positive"):
        reconstruct(run_dir, num=4, steps=0, sampler=None, seed=0, device_name="cpu", out=None)
