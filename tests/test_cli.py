"""The `ul` tool end to end on the tiny preset: train, resume, reconstruct, encode, train-base,
sample; plus dry runs and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.run_files import assert_run_files
from unified_latents.cli import main
from unified_latents.training.metrics_log import read_metrics


def test_dry_run_prints_resolved_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["train-autoencoder", "--preset", "tiny", "--set", "model.loss_factor=2", "--dry-run"])
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed["kind"] == "autoencoder" and printed["run"]["model"]["loss_factor"] == 2.0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--set", "model.lossfactor=2"], "model.lossfactor"),
        (["--set", "train.max_steps=ten"], "train.max_steps"),
        (["--preset", "nope"], "unknown preset"),
        # issue 15: values that used to pass and crash later with tracebacks
        (["--set", "train.log_every=0"], "log_every must be ≥ 1, got 0"),
        (["--set", "optim.lr=nan"], "optim.lr: expected a number, got 'nan'"),
        (["--set", "optim.lr=inf"], "lr must be a finite positive number"),
        (["--set", "train.grad_accumulation=3"], "must be divisible by"),
        (["--set", "train.max_steps=-5"], "max_steps must be ≥ 0, got -5"),
        (["--set", "train.time_budget_minutes=-1"], "time_budget_minutes must be a finite"),
        (["--set", "eval.decoder_steps=0"], "decoder_steps must be ≥ 1"),
    ],
)
def test_bad_config_is_one_clear_line(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train-autoencoder", "--preset", "tiny", *arguments, "--dry-run"]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error and len(error.splitlines()) == 1


def test_the_accumulation_rule_applies_to_the_final_values_not_each_override(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = ["--set", "train.grad_accumulation=3", "--set", "train.batch_size=48"]
    assert main(["train-autoencoder", "--preset", "tiny", *settings, "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["run"]["train"]["grad_accumulation"] == 3


def test_a_model_that_cannot_be_built_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    arguments = ["--run-dir", str(run_dir), "--set", "data.image_size=7"]
    assert main(["train-autoencoder", "--preset", "tiny", *arguments]) == 2
    error = capsys.readouterr().err
    assert "image size 7 is not divisible" in error and len(error.splitlines()) == 1
    assert not run_dir.exists()


def test_a_failed_data_check_leaves_no_run_directory_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 15: a batch larger than the data failed after writing config.json, and the
    corrected re-run was then refused as "a different config"."""
    run_dir = tmp_path / "run"
    tiny = ["train-autoencoder", "--preset", "tiny", "--run-dir", str(run_dir)]
    assert main([*tiny, "--set", "train.batch_size=4096"]) == 2
    assert "too few for batches of 4096" in capsys.readouterr().err
    assert not run_dir.exists()
    assert main([*tiny, "--set", "train.max_steps=2", "--set", "train.eval_every=0"]) == 0


@pytest.mark.parametrize(
    "arguments",
    [["--num", "0"], ["--num", "-3"], ["--steps", "0"], ["--num", "two"]],
)
def test_reconstruct_counts_must_be_positive(
    arguments: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--num 0` crashed in torch.stack; `--steps 0` silently used the run's 8 steps."""
    with pytest.raises(SystemExit) as stopped:
        main(["reconstruct", "--run", str(tmp_path), *arguments])
    assert stopped.value.code == 2
    assert "positive integer" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_pipeline_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ae = tmp_path / "ae"
    train = ["train-autoencoder", "--preset", "tiny", "--run-dir", str(ae)]
    assert main([*train, "--set", "train.max_steps=20"]) == 0
    assert_run_files(ae, "reconstructions/step_00000020.png")
    assert list((ae / "checkpoints" / "step_00000020").glob("*.safetensors"))

    # same command with a longer budget resumes at step 20 instead of starting over
    assert main([*train, "--set", "train.max_steps=30"]) == 0
    captured = capsys.readouterr()
    assert "resuming from" in captured.out + captured.err
    steps = [r["step"] for r in read_metrics(ae) if r["split"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == 30
    # changing what is trained is refused
    assert main([*train, "--set", "model.loss_factor=2"]) == 2
    assert "model.loss_factor" in capsys.readouterr().err

    assert main(["reconstruct", "--run", str(ae), "--num", "16", "--steps", "4"]) == 0
    result = json.loads((ae / "reconstruct" / "reconstruct.json").read_text())
    assert result["num_images"] == 16 and np.isfinite(result["psnr_db"])

    base = tmp_path / "base"
    assert (
        main(["train-base", "--autoencoder", str(ae), "--preset", "tiny", "--run-dir", str(base)])
        == 0
    )
    assert (ae / "latents" / "train" / "index.json").exists()
    assert (base / "plots" / "bits_per_pixel.png").exists()
    evals = [r for r in read_metrics(base) if r["split"] == "eval"]
    assert evals[-1]["base_elbo_bits_per_pixel"] > 0 and evals[-1]["prior_bound_bits_per_pixel"] > 0

    out_a, out_b = tmp_path / "a", tmp_path / "b"
    for out in (out_a, out_b):
        assert (
            main(
                [
                    "sample",
                    "--run",
                    str(base),
                    "--num",
                    "6",
                    "--class",
                    "3",
                    "--steps",
                    "4",
                    "--decoder-steps",
                    "4",
                    "--guidance",
                    "2",
                    "--seed",
                    "7",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
    a, b = np.load(out_a / "samples.npz"), np.load(out_b / "samples.npz")
    assert a["images"].shape == (6, 1, 8, 8) and a["images"].dtype == np.uint8
    assert np.array_equal(a["images"], b["images"]) and (a["labels"] == 3).all()
    assert (out_a / "grid.png").exists()
    assert main(["sample", "--run", str(base), "--num", "2", "--prompt", "a seven"]) == 2
    assert "text-conditioned" in capsys.readouterr().err
