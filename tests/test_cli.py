"""The `ul` tool end to end on the tiny preset: train, resume, reconstruct, encode, train-base,
sample; plus dry runs and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

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
    ],
)
def test_bad_config_is_one_clear_line(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train-autoencoder", "--preset", "tiny", *arguments, "--dry-run"]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


@pytest.mark.slow
def test_tiny_pipeline_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ae = tmp_path / "ae"
    assert (
        main(
            [
                "train-autoencoder",
                "--preset",
                "tiny",
                "--run-dir",
                str(ae),
                "--set",
                "train.max_steps=20",
            ]
        )
        == 0
    )
    for name in (
        "config.json",
        "metrics.jsonl",
        "plots/loss.png",
        "plots/bits_per_pixel.png",
        "plots/psnr.png",
        "reconstructions/step_00000020.png",
    ):
        assert (ae / name).exists(), name
    assert list((ae / "checkpoints" / "step_00000020").glob("*.safetensors"))

    # same command with a longer budget resumes at step 20 instead of starting over
    assert (
        main(
            [
                "train-autoencoder",
                "--preset",
                "tiny",
                "--run-dir",
                str(ae),
                "--set",
                "train.max_steps=30",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "resuming from" in captured.out + captured.err
    steps = [r["step"] for r in read_metrics(ae) if r["split"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == 30
    # changing what is trained is refused
    assert (
        main(
            [
                "train-autoencoder",
                "--preset",
                "tiny",
                "--run-dir",
                str(ae),
                "--set",
                "model.loss_factor=2",
            ]
        )
        == 2
    )
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
