"""`ul evaluate` on tiny autoencoder, base, pixel-space base and end-to-end runs trained inside
the test, with a stand-in FID network passed as `--inception` (conftest.py)."""

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


@pytest.fixture
def reference_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Reference features are cached in this test's folder, not the user's cache."""
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    return tmp_path


def _train(tmp_path_factory: pytest.TempPathFactory, name: str, *arguments: str) -> Path:
    """`ul ARGUMENTS --run-dir RUN` with RUN in a fresh folder; returns RUN."""
    run = tmp_path_factory.mktemp(f"evaluate-{name}") / name
    assert main([*arguments, "--run-dir", str(run)]) == 0
    return run


def _evaluate(run: Path, *arguments: str) -> dict:  # type: ignore[type-arg]
    """`ul evaluate --run RUN --num 4 ARGUMENTS`, then its eval.json."""
    assert main(["evaluate", "--run", str(run), "--num", "4", *arguments]) == 0
    return json.loads((run / "eval" / "eval.json").read_text())  # type: ignore[no-any-return]


def _finite_metrics(record: dict) -> None:  # type: ignore[type-arg]
    for name, value in record["metrics"].items():
        assert value is not None and math.isfinite(value), name
    for name, value in record["flops"].items():
        assert value > 0, name


@pytest.mark.slow
def test_autoencoder_run(runs: dict[str, Path], reference_cache: Path) -> None:
    ae = runs["ae"]
    record = _evaluate(ae, "--inception", str(runs["inception"]), "--decoder-steps", "4")
    assert record["kind"] == "autoencoder" and record["step"] == 10 and record["num"] == 4
    expected = {"rFID@4", "rKID@4", "psnr_db", "ssim", "bits_per_pixel", "bits_per_image"}
    assert expected | {"bits_per_latent_dim"} <= set(record["metrics"])
    _finite_metrics(record)
    flops = record["flops"]
    assert flops["stage1_training_per_image"] == pytest.approx(
        3 * flops["stage1_forward_per_image"]
    )
    (part,) = record["training"]["parts"].values()  # 10 steps × global batch 32 of stage 1
    assert part["step"] == 10 and part["global_batch_size"] == 32
    expected_total = 10 * 32 * flops["stage1_training_per_image"]
    assert flops["training_total"] == part["training_flops"] == pytest.approx(expected_total)
    assert "test split" in record["notes"]["rFID@4"]  # says which reference was used
    assert (
        record["command"].startswith("ul evaluate --run")
        and record["settings"]["decoder_steps"] == 4
    )
    report = (ae / "eval" / "report.md").read_text()
    assert "rFID@4" in report and "eval/reconstructions.png" in report and "ul evaluate" in report
    assert (ae / "eval" / "reconstructions.png").exists()
    assert list((reference_cache / CACHE_SUBDIR).glob("ref-*.npz"))  # features were cached


@pytest.mark.slow
@pytest.mark.usefixtures("reference_cache")
def test_base_run(runs: dict[str, Path]) -> None:
    base = runs["base"]
    steps = ["--base-steps", "4", "--decoder-steps", "4"]
    record = _evaluate(base, "--inception", str(runs["inception"]), "--guidance", "1.5", *steps)
    assert record["kind"] == "base" and record["settings"]["guidance"] == 1.5
    expected = {"gFID@4", "gKID@4", "base_elbo_bits_per_pixel", "prior_bound_bits_per_pixel"}
    assert expected <= set(record["metrics"])
    _finite_metrics(record)
    # digits are not Fashion-MNIST: FD_cls is reported as skipped, never computed as "FID"
    assert "skipped" in record["notes"]["FD_cls@4"]
    flops = record["flops"]
    assert flops["base_training_per_sample"] == pytest.approx(3 * flops["base_forward_per_sample"])
    assert flops["sampling_per_sample"] > flops["sampling_decoder_per_sample"] > 0
    # stage 1 (10 steps, the checkpoint the latents came from) + stage 2 (10 steps), batch 32
    stage1, stage2 = record["training"]["parts"]["stage1"], record["training"]["parts"]["base"]
    assert stage1["run_dir"] == str(runs["ae"]) and stage1["step"] == stage2["step"] == 10
    assert stage2["training_flops"] == pytest.approx(320 * flops["base_training_per_sample"])
    assert stage1["training_flops_per_image"] > flops["base_training_per_sample"] > 0
    assert flops["training_total_stage1"] == pytest.approx(stage1["training_flops"])
    total = stage1["training_flops"] + stage2["training_flops"]
    assert flops["training_total"] == record["training"]["total_flops"] == pytest.approx(total)
    assert "test split" in record["notes"]["gFID@4"]  # the set rFID uses
    report = (base / "eval" / "report.md").read_text()
    assert "gFID@4" in report and "eval/samples.png" in report and "FD_cls@4" in report
    labels = np.load(base / "eval" / "samples.npz")["labels"]
    assert labels.tolist() == [0, 1, 2, 3]  # balanced over classes: sample i ↦ class i mod K


@pytest.fixture(scope="module")
def pixel_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    steps = ["--set", "train.max_steps=4", "--set", "train.eval_every=4"]
    return _train(tmp_path_factory, "pixel", "train-base", "--preset", "pixel-tiny", *steps)


@pytest.mark.slow
@pytest.mark.usefixtures("reference_cache")
def test_pixel_space_base_run(pixel_run: Path, stand_in_inception: Path) -> None:
    """Pixel diffusion has no autoencoder run: no prior bound, no decoder, no stage 1."""
    record = _evaluate(pixel_run, "--inception", str(stand_in_inception), "--base-steps", "4")
    assert record["kind"] == "pixel" and record["settings"]["autoencoder_run"].startswith("none")
    assert {"gFID@4", "gKID@4", "base_elbo_bits_per_pixel"} <= set(record["metrics"])
    assert "prior_bound_bits_per_pixel" not in record["metrics"]
    for name, value in record["metrics"].items():
        assert value is not None and math.isfinite(value), name
    flops = record["flops"]
    assert flops["sampling_decoder_per_sample"] == 0  # the identity "decoder"
    assert flops["sampling_per_sample"] == flops["sampling_base_model_per_sample"] > 0
    assert list(record["training"]["parts"]) == ["base"]
    expected = 4 * 32 * flops["base_training_per_sample"]
    assert flops["training_total"] == pytest.approx(expected)
    samples = np.load(pixel_run / "eval" / "samples.npz")["samples"]
    assert samples.shape == (4, 1, 8, 8) and samples.dtype == np.uint8


@pytest.fixture(scope="module")
def end_to_end_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    steps = ["train.max_steps=4", "train.eval_every=4", "eval.base_steps=4", "eval.decoder_steps=4"]
    settings = [f"--set={setting}" for setting in steps]
    return _train(tmp_path_factory, "e2e", "train-end-to-end", "--preset", "tiny", *settings)


@pytest.mark.slow
@pytest.mark.usefixtures("reference_cache")
def test_end_to_end_run(end_to_end_run: Path, stand_in_inception: Path, tmp_path: Path) -> None:
    run = end_to_end_run
    record = _evaluate(run, "--seed", "3", "--inception", str(stand_in_inception))
    assert record["kind"] == "end-to-end" and record["step"] == 4
    assert record["settings"]["scheme"] == "noise-augmented"
    samples = {"gFID@4", "gKID@4"}
    reconstructions = {"rFID@4", "rKID@4", "psnr_db", "ssim"}
    bits = {"base_elbo_bits_per_pixel", "bits_per_pixel", "base_elbo_bits_per_latent_dim"}
    assert samples | reconstructions | bits <= set(record["metrics"])
    _finite_metrics(record)
    metrics = record["metrics"]
    assert metrics["bits_per_pixel"] == metrics["base_elbo_bits_per_pixel"] > 0
    assert "test split" in record["notes"]["gFID@4"]  # the set rFID uses
    assert "test split" in record["notes"]["rFID@4"]
    assert "skipped" in record["notes"]["FD_cls@4"]  # digits, not Fashion-MNIST

    # Training compute: 4 steps × global batch 32 × (3 × encoder + base + decoder forward).
    flops = record["flops"]
    forward = flops["end_to_end_forward_per_image"]
    parts = flops["encoder_forward_per_image"] + flops["base_forward_per_image"]
    assert forward == pytest.approx(parts + flops["decoder_forward_per_image"])
    assert flops["end_to_end_training_per_image"] == pytest.approx(3 * forward)
    assert flops["training_total"] == pytest.approx(4 * 32 * 3 * forward)
    assert record["training"]["parts"]["end_to_end"]["images_seen"] == 128

    # The samples are those `ul sample` draws with the same seed and settings.
    out = tmp_path / "sampled"
    sample = ["sample", "--run", str(run), "--num", "4", "--seed", "3", "--out", str(out)]
    assert main(sample) == 0
    evaluated = np.load(run / "eval" / "samples.npz")
    assert np.array_equal(evaluated["samples"], np.load(out / "samples.npz")["images"])
    assert evaluated["labels"].tolist() == [0, 1, 2, 3]
    assert (run / "eval" / "reconstructions.png").exists()
    report = (run / "eval" / "report.md").read_text()
    assert "rFID@4" in report and "gFID@4" in report and "Training compute" in report


def _fake_run(directory: Path, kind: str) -> Path:
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"config": {"kind": kind, "run": {}}}))
    return directory


@pytest.mark.parametrize("option", [["--guidance", "2"], ["--decoder-samples", "4"]])
def test_sampling_options_on_an_autoencoder_run_are_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str]
) -> None:
    run = _fake_run(tmp_path / "ae", "autoencoder")
    assert main(["evaluate", "--run", str(run), *option, "--no-fid"]) == 2
    error = capsys.readouterr().err
    assert "apply to runs that generate" in error and "Traceback" not in error


def test_unsupported_run_kinds_are_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _fake_run(tmp_path / "other", "something-else")
    assert main(["evaluate", "--run", str(run), "--no-fid"]) == 2
    assert "'something-else'" in capsys.readouterr().err


def test_eval_json_names_the_checkpoint_it_loaded_after_a_fallback(tmp_path: Path) -> None:
    """Issue 15: with the newest checkpoint truncated, `ul evaluate` loaded the previous one
    but eval.json recorded the newest's path, step and training compute."""
    run = tmp_path / "ae"
    settings = ["--set", "train.max_steps=4", "--set", "train.checkpoint_every=2"]
    train = ["train-autoencoder", "--preset", "tiny", "--run-dir", str(run), *settings]
    assert main([*train, "--set", "train.eval_every=0"]) == 0
    newest = run / "checkpoints" / "step_00000004" / "ema.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])  # truncated
    arguments = ["evaluate", "--run", str(run), "--num", "4", "--no-fid", "--decoder-steps", "2"]
    with pytest.warns(UserWarning, match="step_00000004 is unreadable"):
        assert main(arguments) == 0
    record = json.loads((run / "eval" / "eval.json").read_text())
    assert record["checkpoint"] == str(run / "checkpoints" / "step_00000002")
    assert record["step"] == 2
    (part,) = record["training"]["parts"].values()
    assert part["step"] == 2 and part["images_seen"] == 2 * 32
