"""The §10 baselines through the same commands as UL: `ul train-autoencoder --preset kl-vae-tiny`
→ `ul train-base` → `ul sample`, and pixel-space diffusion `ul train-base --preset pixel-tiny` →
`ul sample` (no autoencoder); plus dry runs and errors."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from unified_latents.cli import main
from unified_latents.runs.presets import AUTOENCODER_PRESETS
from unified_latents.runs.presets_ablations import ABLATIONS
from unified_latents.training.metrics_log import read_metrics


def last_eval(run_dir: Path) -> dict[str, float]:
    return [record for record in read_metrics(run_dir) if record["split"] == "eval"][-1]


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_each_ablation_preset_changes_only_the_objective_or_logsnr_0(name: str) -> None:
    for ul_preset, preset in (("fashion-mnist", name), ("tiny", f"{name}-tiny")):
        ul, ablation = AUTOENCODER_PRESETS[ul_preset](), AUTOENCODER_PRESETS[preset]()
        model = replace(ablation.model, logsnr_0=ul.model.logsnr_0)
        assert ablation != ul and replace(ablation, objective=ul.objective, model=model) == ul


def test_dry_run_and_bad_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train-autoencoder", "--preset", "ul-stopgrad-prior", "--dry-run"]) == 0
    objective = json.loads(capsys.readouterr().out)["run"]["objective"]
    assert objective == {**objective, "kind": "ul-stopgrad-prior", "kl_weight": 0.01}
    bad = ["train-autoencoder", "--preset", "tiny", "--set", "objective.kind=vqgan", "--dry-run"]
    assert main(bad) == 2
    assert "objective.kind" in capsys.readouterr().err
    assert main(["train-base", "--preset", "tiny", "--dry-run"]) == 2  # neither AE nor pixels
    assert "--autoencoder" in capsys.readouterr().err
    pixel_and_ae = ["train-base", "--preset", "pixel-tiny", "--autoencoder", "x", "--dry-run"]
    assert main(pixel_and_ae) == 2
    assert "pixel-space" in capsys.readouterr().err


def sample_run(base: Path, out: Path) -> np.ndarray:
    arguments = ["sample", "--run", str(base), "--num", "4", "--class", "2", "--steps", "3"]
    assert main([*arguments, "--decoder-steps", "2", "--out", str(out)]) == 0
    images: np.ndarray = np.load(out / "samples.npz")["images"]
    return images


@pytest.mark.slow
def test_kl_vae_pipeline(tmp_path: Path) -> None:
    ae, base = tmp_path / "ae", tmp_path / "base"
    train_ae = ["train-autoencoder", "--preset", "kl-vae-tiny", "--run-dir", str(ae)]
    assert main([*train_ae, "--set", "train.max_steps=6", "--set", "train.eval_every=6"]) == 0
    results = last_eval(ae)
    # no prior: the KL is reported under its own name, never as the rate bound
    assert results["kl_bits_per_pixel"] > 0 and "bits_per_pixel" not in results
    assert np.isfinite(results["psnr_db"]) and (ae / "reconstructions/step_00000006.png").exists()

    train_base = ["train-base", "--autoencoder", str(ae), "--preset", "tiny"]
    assert main([*train_base, "--run-dir", str(base), "--set", "train.max_steps=4"]) == 0
    cached = json.loads((ae / "latents" / "train" / "index.json").read_text())
    assert cached["latent_shape"] == [2, 4, 4]
    results = last_eval(base)
    assert results["base_elbo_bits_per_pixel"] > 0 and "prior_bound_bits_per_pixel" not in results
    images = sample_run(base, tmp_path / "samples")
    assert images.shape == (4, 1, 8, 8) and images.dtype == np.uint8


@pytest.mark.slow
def test_pixel_pipeline(tmp_path: Path) -> None:
    base = tmp_path / "pixel"
    train = ["train-base", "--preset", "pixel-tiny", "--run-dir", str(base)]
    assert main([*train, "--set", "train.max_steps=4", "--set", "pixel.logsnr_max=12"]) == 0
    saved = json.loads((base / "config.json").read_text())["config"]
    assert saved["kind"] == "pixel" and saved["run"]["logsnr_max"] == 12.0
    assert "autoencoder_run" not in saved["run"]
    assert last_eval(base)["base_elbo_bits_per_pixel"] > 0
    assert list((base / "samples").glob("step_*.png"))
    images = sample_run(base, tmp_path / "samples")
    assert images.shape == (4, 1, 8, 8) and images.dtype == np.uint8
    # A run written before the pixel baseline was its own kind: "base" with a `pixel` group.
    for path in (base / "config.json", *base.glob("checkpoints/*/state.json")):
        stored = json.loads(path.read_text())
        record = stored["config"]
        run = dict(record["run"])
        pixel = {"data": run.pop("data"), "logsnr_max": run.pop("logsnr_max")}
        stored["config"] = {
            **record,
            "kind": "base",
            "run": {"autoencoder_run": "", "pixel": pixel, **run},
        }
        path.write_text(json.dumps(stored))
    assert np.array_equal(sample_run(base, tmp_path / "old-format"), images)
    assert main([*train, "--set", "train.max_steps=6", "--set", "pixel.logsnr_max=12"]) == 0
