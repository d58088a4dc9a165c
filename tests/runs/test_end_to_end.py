"""`ul train-end-to-end` on the tiny preset, then `ul sample` on that run exactly as on a base
run (UL-SPEC §9)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.run_files import assert_run_files
from unified_latents.cli import main
from unified_latents.training.metrics_log import read_metrics


def test_dry_run_shows_the_scheme(capsys: pytest.CaptureFixture[str]) -> None:
    arguments = ["train-end-to-end", "--preset", "tiny", "--dry-run"]
    assert main([*arguments, "--set", "scheme=shifted-decoder"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["kind"] == "end-to-end" and printed["run"]["scheme"] == "shifted-decoder"
    assert main([*arguments, "--set", "scheme=two-stage"]) == 2
    assert "scheme" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["noise-augmented", "shifted-decoder"])
def test_train_then_sample(scheme: str, tmp_path: Path) -> None:
    run = tmp_path / "e2e"
    steps = 10 if scheme == "noise-augmented" else 4
    settings = [f"scheme={scheme}", f"train.max_steps={steps}", "eval.decoder_steps=4"]
    train = ["train-end-to-end", "--preset", "tiny", "--run-dir", str(run)]
    assert main([*train, *(f"--set={setting}" for setting in settings)]) == 0
    assert_run_files(run, f"reconstructions/step_{steps:08d}.png", f"samples/step_{steps:08d}.png")
    evaluation = [r for r in read_metrics(run) if r["split"] == "eval"][-1]
    assert evaluation["base_elbo_bits_per_pixel"] > 0 and math.isfinite(evaluation["psnr_db"])
    training = [r for r in read_metrics(run) if r["split"] == "train"][-1]
    assert training["rate_bits_per_pixel"] > 0 and math.isfinite(training["loss"])
    if scheme == "shifted-decoder":
        assert training["logsnr_aug"] == 5.0
        return

    outputs = [tmp_path / "a", tmp_path / "b"]
    for out in outputs:
        sample = ["sample", "--run", str(run), "--num", "6", "--class", "3", "--seed", "7"]
        assert main([*sample, "--steps", "4", "--decoder-steps", "4", "--out", str(out)]) == 0
    a, b = (np.load(out / "samples.npz") for out in outputs)
    assert a["images"].shape == (6, 1, 8, 8) and a["images"].dtype == np.uint8
    assert np.array_equal(a["images"], b["images"]) and (a["labels"] == 3).all()
    assert (outputs[0] / "grid.png").exists()
