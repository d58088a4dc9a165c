"""`ul evaluate` on tiny autoencoder and base runs trained inside the test, with a stand-in FID
network passed as `--inception` (conftest.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from unified_latents.cli import main
from unified_latents.metrics.reference_stats import CACHE_DIR_ENV, CACHE_SUBDIR

STEPS = ["--set", "train.max_steps=10", "--set", "train.eval_every=10"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, stand_in_inception: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("evaluate")
    ae, base = root / "ae", root / "base"
    assert main(["train-autoencoder", "--preset", "tiny", "--run-dir", str(ae), *STEPS]) == 0
    base_args = ["train-base", "--autoencoder", str(ae), "--preset", "tiny", "--run-dir", str(base)]
    assert main([*base_args, *STEPS]) == 0
    return {"ae": ae, "base": base, "inception": stand_in_inception}


def _finite_metrics(record: dict) -> None:  # type: ignore[type-arg]
    for name, value in record["metrics"].items():
        assert value is not None and math.isfinite(value), name
    for name, value in record["flops"].items():
        assert value > 0, name


@pytest.mark.slow
def test_autoencoder_run(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    ae = runs["ae"]
    arguments = ["evaluate", "--run", str(ae), "--num", "4", "--inception", str(runs["inception"])]
    assert main([*arguments, "--decoder-steps", "4"]) == 0
    record = json.loads((ae / "eval" / "eval.json").read_text())
    assert record["kind"] == "autoencoder" and record["step"] == 10 and record["num"] == 4
    expected = {"rFID@4", "rKID@4", "psnr_db", "ssim", "bits_per_pixel", "bits_per_image"}
    assert expected | {"bits_per_latent_dim"} <= set(record["metrics"])
    _finite_metrics(record)
    flops = record["flops"]
    assert flops["stage1_training_per_image"] == pytest.approx(
        3 * flops["stage1_forward_per_image"]
    )
    assert "test split" in record["notes"]["rFID@4"]  # says which reference was used
    assert (
        record["command"].startswith("ul evaluate --run")
        and record["settings"]["decoder_steps"] == 4
    )
    report = (ae / "eval" / "report.md").read_text()
    assert "rFID@4" in report and "eval/reconstructions.png" in report and "ul evaluate" in report
    assert (ae / "eval" / "reconstructions.png").exists()
    assert list((tmp_path / CACHE_SUBDIR).glob("ref-*.npz"))  # reference features were cached


@pytest.mark.slow
def test_base_run(runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    base = runs["base"]
    arguments = [
        "evaluate",
        "--run",
        str(base),
        "--num",
        "4",
        "--inception",
        str(runs["inception"]),
    ]
    assert main([*arguments, "--guidance", "1.5", "--base-steps", "4", "--decoder-steps", "4"]) == 0
    record = json.loads((base / "eval" / "eval.json").read_text())
    assert record["kind"] == "base" and record["settings"]["guidance"] == 1.5
    expected = {"gFID@4", "gKID@4", "base_elbo_bits_per_pixel", "prior_bound_bits_per_pixel"}
    assert expected <= set(record["metrics"])
    _finite_metrics(record)
    # digits are not Fashion-MNIST: FD_cls is reported as skipped, never computed as "FID"
    assert "skipped" in record["notes"]["FD_cls@4"]
    flops = record["flops"]
    assert flops["base_training_per_sample"] == pytest.approx(3 * flops["base_forward_per_sample"])
    assert flops["sampling_per_sample"] > flops["sampling_decoder_per_sample"] > 0
    assert "train split" in record["notes"]["gFID@4"]
    report = (base / "eval" / "report.md").read_text()
    assert "gFID@4" in report and "eval/samples.png" in report and "FD_cls@4" in report
    labels = np.load(base / "eval" / "samples.npz")["labels"]
    assert labels.tolist() == [0, 1, 2, 3]  # balanced over classes: sample i ↦ class i mod K


def _fake_run(directory: Path, kind: str) -> Path:
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"config": {"kind": kind, "run": {}}}))
    return directory


def test_guidance_on_an_autoencoder_run_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _fake_run(tmp_path / "ae", "autoencoder")
    assert main(["evaluate", "--run", str(run), "--guidance", "2", "--no-fid"]) == 2
    error = capsys.readouterr().err
    assert "base-model runs only" in error and "Traceback" not in error


def test_unsupported_run_kinds_are_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _fake_run(tmp_path / "other", "something-else")
    assert main(["evaluate", "--run", str(run), "--no-fid"]) == 2
    assert "'something-else'" in capsys.readouterr().err
