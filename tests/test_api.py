"""The Python API (`unified_latents.api`): the README's snippet runs on tiny runs, outputs match
the CLI for the same seed, and bad paths give one `RunError`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import unified_latents as ul
from unified_latents.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("api")
    ae, base = root / "ae", root / "base"
    assert main(["train-autoencoder", "--preset", "tiny", "--run-dir", str(ae)]) == 0
    arguments = ["train-base", "--preset", "tiny", "--autoencoder", str(ae), "--run-dir", str(base)]
    assert main(arguments) == 0
    yield {"ae": ae, "base": base}
    torch.set_num_threads(threads)


def readme_snippet() -> str:
    text = README.read_text()
    section = text[text.index("## Python API") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


@pytest.mark.slow
def test_readme_snippet_runs(runs: dict[str, Path]) -> None:
    code = readme_snippet()
    code = code.replace("runs/autoencoder-fashion-mnist", str(runs["ae"]))
    code = code.replace("runs/base-fashion-mnist", str(runs["base"]))
    code = code.replace("steps=32", "steps=4")
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)
    images, x, z, bpp, samples = (scope[k] for k in ("images", "x", "z", "bpp", "samples"))
    assert isinstance(scope["ae"], ul.Autoencoder) and isinstance(scope["gen"], ul.Generator)
    assert images.dtype == x.dtype == samples.dtype == torch.uint8  # type: ignore[attr-defined]
    assert x.shape == images.shape == (8, *scope["ae"].image_shape)  # type: ignore[attr-defined]
    assert z.shape == (8, *scope["ae"].latent_shape)  # type: ignore[attr-defined]
    assert bpp.shape == (8,) and bool((bpp > 0).all())  # type: ignore[attr-defined]
    assert samples.shape == (16, *scope["gen"].image_shape)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_outputs_are_the_clis(runs: dict[str, Path], tmp_path: Path) -> None:
    gen = ul.load(runs["base"])
    assert isinstance(gen, ul.Generator)
    out = tmp_path / "samples"
    sample_args = ["sample", "--run", str(runs["base"]), "--num", "6", "--seed", "3"]
    assert main([*sample_args, "--out", str(out)]) == 0
    cli = np.load(out / "samples.npz")["images"]
    assert np.array_equal(gen.sample(6, seed=3).numpy(), cli)
    ae = ul.load(runs["ae"])
    assert isinstance(ae, ul.Autoencoder)
    images = ae.test_images(4)
    first, again = ae.reconstruct(images, steps=3, seed=1), ae.reconstruct(images, steps=3, seed=1)
    assert torch.equal(first, again)  # a seed fixes the decoder's samples
    floats = images.float() / 127.5 - 1.0
    torch.testing.assert_close(ae.encode(floats), ae.encode(images))


@pytest.mark.slow
def test_bf16_sampling_is_the_apis_bf16_and_is_recorded(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    """`ul sample --precision bf16` runs the networks under bf16 autocast: the API's
    dtype=torch.bfloat16 images, not the fp32 ones, and sample.json / eval.json say so."""
    out = tmp_path / "bf16"
    arguments = ["sample", "--run", str(runs["base"]), "--num", "6", "--seed", "3"]
    assert main([*arguments, "--precision", "bf16", "--out", str(out)]) == 0
    cli = np.load(out / "samples.npz")["images"]
    assert json.loads((out / "sample.json").read_text())["precision"] == "bf16"
    gen = ul.load(runs["base"], dtype=torch.bfloat16)
    assert isinstance(gen, ul.Generator)
    assert np.array_equal(gen.sample(6, seed=3).numpy(), cli)
    fp32 = ul.load(runs["base"])
    assert isinstance(fp32, ul.Generator)
    assert not np.array_equal(fp32.sample(6, seed=3).numpy(), cli)
    evaluate = ["evaluate", "--run", str(runs["base"]), "--num", "4", "--no-fid"]
    assert main([*evaluate, "--precision", "bf16"]) == 0
    record = json.loads((runs["base"] / "eval" / "eval.json").read_text())
    assert record["sampling_precision"] == "bf16"
    autoencoder = ["evaluate", "--run", str(runs["ae"]), "--num", "4", "--no-fid"]
    assert main([*autoencoder, "--precision", "bf16"]) != 0  # nothing of it samples in bf16


def test_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ul.RunError, match="does not exist"):
        ul.load(tmp_path / "missing")
    with pytest.raises(ul.RunError, match="not a run directory"):
        ul.load(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ul.RunError, match="unreadable"):
        ul.load(tmp_path)
    record = {"config": {"kind": "autoencoder", "run": {}}}
    (tmp_path / "config.json").write_text(json.dumps(record))
    with pytest.raises(ul.RunError, match="no usable checkpoint"):
        ul.load(tmp_path)
    with pytest.raises(ValueError, match="dtype"):
        ul.load(tmp_path, dtype=torch.float16)


@pytest.mark.slow
def test_wrong_image_shape_is_one_clear_error(runs: dict[str, Path]) -> None:
    ae = ul.load(runs["ae"])
    assert isinstance(ae, ul.Autoencoder)
    with pytest.raises(ValueError, match=re.escape("images must be [N, 1, 8, 8]")):
        ae.encode(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))


@pytest.mark.slow
def test_export_opens_like_the_run(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "exported-base"
    assert main(["export", str(runs["base"]), str(out)]) == 0
    assert (out / "README.md").is_file() and (out / "autoencoder" / "config.json").is_file()
    assert not list(out.rglob("optimizer.safetensors"))  # weights to use, not to resume
    original, exported = ul.load(runs["base"]), ul.load(out)
    assert isinstance(original, ul.Generator) and isinstance(exported, ul.Generator)
    assert exported.class_names == original.class_names
    assert torch.equal(exported.sample(4, seed=2), original.sample(4, seed=2))
    assert main(["sample", "--run", str(out), "--num", "2", "--out", str(tmp_path / "s")]) == 0
    ae_out = tmp_path / "exported-ae"
    assert main(["export", str(runs["ae"]), str(ae_out)]) == 0
    ae = ul.load(ae_out)
    assert isinstance(ae, ul.Autoencoder)
    images = ae.test_images(2)
    original_ae = ul.load(runs["ae"])
    assert isinstance(original_ae, ul.Autoencoder)
    assert torch.equal(ae.encode(images), original_ae.encode(images))


def test_export_refuses_a_non_empty_folder(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["export", str(runs["ae"]), str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "mine"
