"""`ul sweep` on the tiny preset: trains and evaluates each grid point, resumes half-trained
points, skips finished ones, and writes sweep.json, sweep.md and the plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unified_latents.cli import main


def _sweep(sweep_dir: Path, max_steps: int, loss_factors: str = "1.5,2") -> list[str]:
    return [
        "sweep",
        "--preset",
        "tiny",
        "--grid",
        f"loss_factor={loss_factors}",
        "--grid",
        "bias=0",
        "--set",
        f"train.max_steps={max_steps}",
        *("--set", "eval.num_images=8", "--set", "eval.num_reconstructions=4"),
        *("--set", "eval.decoder_steps=2"),
        "--budget-minutes",
        "5",
        "--sweep-dir",
        str(sweep_dir),
    ]


def _checkpoint_times(sweep_dir: Path) -> dict[str, float]:
    return {str(path): path.stat().st_mtime for path in sweep_dir.glob("*/checkpoints/step_*")}


@pytest.mark.slow
def test_sweep_resumes_and_skips_finished_points(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep_dir = tmp_path / "sweep"
    points = ["loss_factor=1.5,decoder_bias=0", "loss_factor=2,decoder_bias=0"]

    assert main(_sweep(sweep_dir, max_steps=2)) == 0
    capsys.readouterr()
    # a longer step budget: both points are half-trained and continue from step 2
    assert main(_sweep(sweep_dir, max_steps=3)) == 0
    output = capsys.readouterr().out
    assert output.count(": resuming in") == 2
    record = json.loads((sweep_dir / "sweep.json").read_text())
    assert [point["name"] for point in record["points"]] == points
    for point in record["points"]:
        assert point["step"] == 3 and point["training"] == "resumed"
        assert point["metrics"]["bits_per_pixel"] > 0 and point["metrics"]["psnr_db"] > 0
    assert record["grid"] == {"model.loss_factor": [1.5, 2.0], "model.decoder_bias": [0.0]}
    eval_times = [(sweep_dir / name / "eval" / "eval.json").stat().st_mtime for name in points]
    checkpoints = _checkpoint_times(sweep_dir)

    # the same command again: nothing is retrained or re-evaluated
    assert main(_sweep(sweep_dir, max_steps=3)) == 0
    output = capsys.readouterr().out
    assert output.count("training finished (step 3) — skipped") == 2
    assert output.count("evaluation at step 3 is current — skipped") == 2
    assert _checkpoint_times(sweep_dir) == checkpoints
    assert [(sweep_dir / n / "eval" / "eval.json").stat().st_mtime for n in points] == eval_times
    assert all(
        p["training"] == "kept"
        for p in json.loads((sweep_dir / "sweep.json").read_text())["points"]
    )

    table = (sweep_dir / "sweep.md").read_text()
    assert all(f"`{name}`" in table for name in points) and "bits/pixel" in table
    for plot in ("bits_per_pixel_vs_loss_factor.png", "psnr_vs_bits_per_pixel.png"):
        assert (sweep_dir / "plots" / plot).exists(), plot


def test_a_key_in_both_grid_and_set_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["sweep", "--preset", "tiny", "--grid", "c_lf=1,2", "--set", "model.loss_factor=3"]
    assert main([*arguments, "--sweep-dir", str(tmp_path)]) == 2
    assert "model.loss_factor is given both" in capsys.readouterr().err


def test_an_unknown_grid_key_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["sweep", "--preset", "tiny", "--grid", "model.lossfactor=1,2"]
    assert main([*arguments, "--sweep-dir", str(tmp_path / "s")]) == 2
    assert "model.lossfactor" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_with_base_trains_and_evaluates_a_base_model_per_point(
    tmp_path: Path, stand_in_inception: Path
) -> None:
    sweep_dir = tmp_path / "sweep"
    arguments = _sweep(sweep_dir, max_steps=2, loss_factors="1.5")
    base = ["--with-base", "--base-set", "train.max_steps=2", "--base-set", "eval.num_latents=8"]
    fid = ["--evaluate-num", "4", "--inception", str(stand_in_inception)]
    assert main([*arguments, *base, *fid]) == 0
    (point,) = json.loads((sweep_dir / "sweep.json").read_text())["points"]
    assert point["step"] == 2 and "rFID@4" in point["metrics"]
    assert point["base"]["step"] == 2 and "gFID@4" in point["base"]["metrics"]
    assert (sweep_dir / point["name"] / "base" / "eval" / "eval.json").exists()
    assert (sweep_dir / "plots" / "gfid_vs_bits_per_pixel.png").exists()
    assert "gFID@4" in (sweep_dir / "sweep.md").read_text()


def test_a_signal_during_a_point_stops_the_whole_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGTERM stops the running training with a checkpoint (`Interrupted`); the sweep must
    then stop as well, not go on to the next point."""
    import unified_latents.commands.sweep as sweep_command
    from unified_latents.commands import Interrupted

    calls: list[Path] = []

    def interrupted_training(kind: str, preset: str, assignments: list[str], run_dir: Path) -> int:
        calls.append(run_dir)
        raise Interrupted("stopped at step 1 by a signal; re-run to resume")

    monkeypatch.setattr(sweep_command, "train", interrupted_training)
    assert main(_sweep(tmp_path / "sweep", max_steps=2)) == 75  # interrupted, not finished
    assert len(calls) == 1
    assert "by a signal; re-run to resume" in capsys.readouterr().err
