"""The decoder-distillation run kind (runs/decoder_distillation.py) end to end on tiny runs:
`ul distill-decoder` trains 4 → 2 → 1 steps and resumes exactly, and the run opens as an
autoencoder everywhere (`ul reconstruct`, `ul evaluate`, `ul.load`) and as the decoder of a base
model (`ul sample --decoder`, `ul.load(BASE, decoder=...)`)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import unified_latents as ul
from unified_latents.cli import main
from unified_latents.objectives.decoder_distillation import DistilledDecoder
from unified_latents.runs.directory import RunError
from unified_latents.runs.kind import AutoencoderModels, with_decoder
from unified_latents.runs.registry import kind_of
from unified_latents.training.metrics_log import read_metrics

SHORT = ["--set", "train.max_steps=4", "--set", "train.eval_every=4"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A tiny autoencoder, a base model on its latents, and its decoder distilled to 1 step."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("distillation")
    ae, base, distilled = root / "ae", root / "base", root / "distilled"
    assert main(["train", "autoencoder", "--preset", "tiny", "--run-dir", str(ae), *SHORT]) == 0
    train_base = ["train", "base", "--preset", "tiny", "--autoencoder", str(ae), *SHORT]
    assert main([*train_base, "--run-dir", str(base)]) == 0
    distill = ["distill-decoder", "--run", str(ae), "--preset", "tiny"]
    assert main([*distill, "--run-dir", str(distilled)]) == 0
    yield {"ae": ae, "base": base, "distilled": distilled}
    torch.set_num_threads(threads)


def dry_run(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main([*arguments, "--preset", "tiny", "--dry-run"]) == 0
    record: dict[str, object] = json.loads(capsys.readouterr().out)
    return record


def test_dry_run_and_the_distill_decoder_alias(capsys: pytest.CaptureFixture[str]) -> None:
    generic = ["train", "decoder-distillation", "--set", "teacher_run=tiny"]
    record = dry_run([*generic, "--set", "target_steps=2"], capsys)
    assert record == dry_run(["distill-decoder", "--run", "tiny", "--steps", "2"], capsys)
    assert record["kind"] == "decoder-distillation" and record["phases"] == [4, 2]
    assert set(record["networks"]) == {"encoder", "prior", "decoder", "student"}  # type: ignore[arg-type]
    for settings, message in (
        (["--set", "initial_steps=6", "--set", "target_steps=4"], "power of 2"),
        (["--set", "teacher_run="], "teacher"),
    ):
        assert main([*generic, *settings, "--preset", "tiny", "--dry-run"]) == 2
        assert message in capsys.readouterr().err


@pytest.mark.slow
def test_distils_phase_by_phase_and_resumes_exactly(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    distilled = runs["distilled"]
    records = read_metrics(distilled)
    evaluations = [r for r in records if r["split"] == "eval"]
    assert [(r["step"], r["student_steps"]) for r in evaluations] == [(3, 2.0), (6, 1.0)]
    assert all(np.isfinite(r["loss"]) for r in records if r["split"] == "train")
    for name in ("plots/loss.png", "plots/psnr.png", "reconstructions/step_00000006.png"):
        assert (distilled / name).exists(), name
    # stopped mid-phase at step 3, then resumed: the same weights as the uninterrupted run
    resumed = tmp_path / "resumed"
    distill = ["distill-decoder", "--run", str(runs["ae"]), "--preset", "tiny"]
    assert main([*distill, "--run-dir", str(resumed), "--set", "train.max_steps=3"]) == 0
    assert main([*distill, "--run-dir", str(resumed)]) == 0
    assert "resuming from" in capsys.readouterr().out
    for name in ("model.safetensors", "ema.safetensors"):
        straight = load_file(distilled / "checkpoints" / "step_00000006" / name)
        again = load_file(resumed / "checkpoints" / "step_00000006" / name)
        assert straight.keys() == again.keys()
        assert all(torch.equal(straight[key], again[key]) for key in straight), name
    # what cannot be distilled
    assert main(["distill-decoder", "--run", str(distilled), "--run-dir", str(tmp_path / "x")]) == 2
    assert "not an autoencoder" in capsys.readouterr().err


@pytest.mark.slow
def test_opens_as_an_autoencoder_with_the_student(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    distilled = runs["distilled"]
    out = tmp_path / "reconstruct"
    assert main(["reconstruct", "--run", str(distilled), "--num", "8", "--out", str(out)]) == 0
    record = json.loads((out / "reconstruct.json").read_text())
    assert record["decoder_steps"] == 1 and record["sampler"] == "ddim"
    assert main(["reconstruct", "--run", str(distilled), "--sampler", "ancestral"]) == 2
    assert "DDIM" in capsys.readouterr().err

    ae = ul.load(distilled)
    assert isinstance(ae, ul.Autoencoder) and isinstance(ae.model, DistilledDecoder)
    assert ae.model.steps == 1 and ae.config.eval.decoder_steps == 1
    images = ae.test_images(4)
    first, second = ae.reconstruct(images, seed=3), ae.reconstruct(images, seed=3)
    assert first.shape == images.shape and torch.equal(first, second)
    with pytest.raises(RunError, match="decoder= is for runs that generate"):
        ul.load(distilled, decoder=distilled)

    exported = tmp_path / "exported"  # carries its teacher's config: opens on its own
    assert main(["export", str(distilled), str(exported)]) == 0
    opened = ul.load(exported)
    assert isinstance(opened, ul.Autoencoder) and opened.config.eval.decoder_steps == 1
    assert torch.equal(opened.reconstruct(images, seed=3), first)

    assert main(["evaluate", "--run", str(distilled), "--num", "8", "--no-fid"]) == 0
    evaluation = json.loads((distilled / "eval" / "eval.json").read_text())
    assert evaluation["kind"] == "decoder-distillation"
    assert evaluation["settings"]["student_steps"] == 1
    assert evaluation["settings"]["teacher_step"] == 4
    assert set(evaluation["training"]["parts"]) == {"stage1", "distillation"}
    assert evaluation["metrics"]["bits_per_pixel"] > 0


@pytest.mark.slow
def test_a_base_model_samples_through_the_distilled_decoder(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    base, distilled = runs["base"], runs["distilled"]
    out = tmp_path / "samples"
    arguments = ["sample", "--run", str(base), "--decoder", str(distilled), "--num", "4"]
    assert main([*arguments, "--class", "3", "--out", str(out)]) == 0
    record = json.loads((out / "sample.json").read_text())
    assert record["decoder_steps"] == 1 and record["decoder_sampler"] == "ddim"
    generator = ul.load(base, decoder=distilled)
    assert isinstance(generator, ul.Generator)
    assert isinstance(generator.autoencoder, DistilledDecoder)
    samples = generator.sample(4, class_label=3, seed=0)
    assert np.array_equal(samples.numpy(), np.load(out / "samples.npz")["images"])

    # a decoder of another latent space (here: a changed encoder) is refused
    device = torch.device("cpu")
    models = kind_of(base).generator(base, device)
    other = kind_of(distilled).autoencoder(distilled, device)
    changed = copy.deepcopy(other.model)
    with torch.no_grad():
        next(changed.encoder.parameters()).add_(1.0)
    with_decoder(models, other, distilled)  # the same encoder: fine
    with pytest.raises(RunError, match="encodes differently"):
        with_decoder(models, AutoencoderModels(changed, other.config, other.checkpoint), distilled)
