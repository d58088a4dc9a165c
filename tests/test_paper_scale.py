"""Paper-scale presets (UL-SPEC §11): the networks, built on `meta`, have the parameter counts
and FLOPs documented in docs/paper_scale.md, and the dry runs print them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from unified_latents.cli import main
from unified_latents.evaluation.network_summary import autoencoder_costs, base_costs, latent_shape
from unified_latents.runs.autoencoder import build_autoencoder
from unified_latents.runs.presets import AUTOENCODER_PRESETS, BASE_PRESETS

DOC = Path(__file__).resolve().parents[1] / "docs" / "paper_scale.md"
ROW = re.compile(
    r"^\| (?P<name>[a-z ()]+) \| [^|]+ \| (?P<params>[\d,]+) \| (?P<gflops>[\d.]+) \|$"
)


def documented() -> dict[str, tuple[int, float]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        if match := ROW.match(line):
            rows[match["name"]] = (int(match["params"].replace(",", "")), float(match["gflops"]))
    return rows


def test_documented_parameter_counts_and_flops_match_the_networks() -> None:
    table = documented()
    assert set(table) == {"encoder", "prior", "decoder", "base (class)", "base (text)"}
    autoencoder = AUTOENCODER_PRESETS["imagenet-512"]()
    shape = latent_shape(lambda: build_autoencoder(autoencoder))
    assert shape == (32, 32, 32)  # 16× downsampling of 512², 32 channels
    measured = {
        cost.name: cost for cost in autoencoder_costs(lambda: build_autoencoder(autoencoder))
    }
    for kind, preset in (("class", "imagenet-512"), ("text", "imagenet-512-text")):
        measured[f"base ({kind})"] = base_costs(BASE_PRESETS[preset]().model, shape)[0]
    for name, (parameters, gflops) in table.items():
        assert measured[name].parameters == parameters, name
        assert measured[name].forward_flops_per_image / 1e9 == pytest.approx(gflops, abs=0.05)


def test_paper_presets_have_the_papers_settings() -> None:
    autoencoder = AUTOENCODER_PRESETS["imagenet-512"]()
    model = autoencoder.model
    assert model.loss_factor == 1.5 and autoencoder.data.image_size == 512
    assert model.encoder.channels == (128, 256, 512, 512) and model.encoder.patch_size == 2
    assert [model.encoder.stage_blocks(i) for i in range(4)] == [2, 2, 2, 3]
    assert (model.prior.width, model.prior.depth) == (1024, 8)
    decoder = model.decoder
    assert decoder.channels == (128, 256, 512) and decoder.dropout == 0.1
    assert (decoder.transformer_width, decoder.transformer_depth) == (1024, 8)
    base = BASE_PRESETS["imagenet-512"]().model.network
    assert base.widths == (512, 1024) and (base.depth, *base.inner_depths) == (6, 16)
    assert base.dropout == 0.1 and base.patch_size == 1
    assert autoencoder.train.precision == "auto"


def test_dry_runs_print_networks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train-autoencoder", "--preset", "imagenet-512", "--dry-run"]) == 0
    out = capsys.readouterr()
    record = json.loads(out.out)
    assert record["networks"]["decoder"]["parameters"] == documented()["decoder"][0]
    assert "GFLOPs/image" in out.err and "prior" in out.err
    base = ["train-base", "--preset", "imagenet-512", "--dry-run", "--autoencoder"]
    assert main([*base, "imagenet-512"]) == 0
    out = capsys.readouterr()
    record = json.loads(out.out)
    assert record["input_shape"] == [32, 32, 32]
    assert record["networks"]["base"]["parameters"] == documented()["base (class)"][0]
    assert main([*base, "no-such-run"]) == 0  # the config still prints; the table cannot
    out = capsys.readouterr()
    assert json.loads(out.out)["networks"] == {} and "neither" in out.err
