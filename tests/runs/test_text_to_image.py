"""Text-to-image on emoji captions (the small fixture, not the full install): the caption lookup
by dataset index, a tiny token-conditioned latent and pixel run that train, and `ul sample` from
prompts writing a captioned grid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.data.emoji_fixture import build_dataset
from unified_latents.cli import main
from unified_latents.commands.prompts import read_prompts, save_captioned_grid
from unified_latents.conditions import ConditionError, ConditionSource
from unified_latents.data.emoji_captions import load_emoji_captions
from unified_latents.data.latent_cache import LatentCache, LatentStream, write_index, write_shard
from unified_latents.networks.conditioning import ConditionConfig
from unified_latents.runs.presets import AUTOENCODER_PRESETS, BASE_PRESETS, PIXEL_PRESETS
from unified_latents.training.metrics_log import read_metrics

TOKENS = ConditionConfig(kind="text-tokens", text_tokens=8)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_dataset(tmp_path_factory.mktemp("emoji"))


def data_settings(root: Path) -> list[str]:
    pairs = ("name=emoji-captions", f"root={root}", "channels=3", "image_size=8")
    return [argument for pair in pairs for argument in ("--set", f"data.{pair}")]


def test_presets_use_the_emoji_captions_and_token_conditioning() -> None:
    for name, size in (("emoji", 32), ("emoji-64", 64), ("kl-vae-emoji", 32)):
        data = AUTOENCODER_PRESETS[name]().data
        assert (data.name, data.image_size, data.channels) == ("emoji-captions", size, 3)
    assert BASE_PRESETS["emoji-text"]().model.condition.kind == "text-tokens"
    pixel = PIXEL_PRESETS["emoji-text"]()
    assert pixel.data.name == "emoji-captions"
    assert pixel.model.condition.kind == "text-tokens"


def test_stream_keys_are_dataset_indices_and_captions_follow_them(
    dataset: Path, tmp_path: Path
) -> None:
    # shard i holds dataset items from i · shard_size on; fill latents with their own index
    write_shard(tmp_path, 0, torch.arange(6.0).reshape(6, 1, 1, 1), torch.zeros(6))
    write_shard(tmp_path, 1, torch.arange(6.0, 10.0).reshape(4, 1, 1, 1), torch.zeros(4))
    write_index(tmp_path, [6, 4], (1, 1, 1), {"class_names": ["x"]})
    stream = LatentStream(LatentCache(tmp_path), 2, seed=0, keys="indices")
    epochs = set()
    for _ in range(8):
        z, keys = next(stream)
        assert keys.shape == (2, 2) and torch.equal(z.flatten().long(), keys[:, 0])
        epochs |= set(keys[:, 1].tolist())
    assert epochs == {0, 1}  # 3 + 2 batches per epoch

    captions = load_emoji_captions(str(dataset), "train", image_size=8)
    source = ConditionSource(TOKENS, captions.class_names, captions)
    keys = torch.tensor([[0, 0], [0, 1], [3, 0]])
    expected = source.encode_prompts([captions.caption(0, 0), captions.caption(0, 1),
                                      captions.caption(3, 0)])  # fmt: skip
    assert torch.equal(source.training(keys, torch.Generator()), expected)
    assert len({captions.caption(0, epoch) for epoch in range(10)}) > 1  # fresh per epoch
    with pytest.raises(ConditionError, match="captioned dataset"):
        ConditionSource(TOKENS, ["x"]).training(keys, torch.Generator())


def test_prompts_and_captioned_grid(tmp_path: Path) -> None:
    prompt_file = tmp_path / "prompts.txt"
    prompt_file.write_text("dog face\n\n  cat face \n")
    assert read_prompts(["a", ""], prompt_file) == ["a", "", "dog face", "cat face"]
    assert read_prompts(None, None) is None
    (tmp_path / "blank.txt").write_text("\n \n")
    with pytest.raises(ConditionError, match="no prompts"):
        read_prompts(None, tmp_path / "blank.txt")
    images = torch.randint(0, 256, (3, 3, 8, 8), dtype=torch.uint8)
    long = "a very long caption that needs wrapping over several lines " * 3
    path = save_captioned_grid(images, ["cat face", long, ""], tmp_path / "grid.png", 2)
    with Image.open(path) as grid:
        pixels = np.asarray(grid.convert("L"))
    assert grid.width == 2 * (128 + 4) + 4 and grid.height > 2 * 128
    caption_strip = pixels[4 + 128 : 4 + 128 + 12, 4 : 4 + 128]
    assert (caption_strip < 128).any()  # black text under the first image


@pytest.mark.slow
def test_tiny_text_token_run_trains_and_samples_from_prompts(dataset: Path, tmp_path: Path) -> None:
    ae, base = tmp_path / "ae", tmp_path / "base"
    short = ["--set", "train.max_steps=4", "--set", "train.eval_every=4"]
    train_ae = ["train-autoencoder", "--preset", "tiny", "--run-dir", str(ae)]
    assert main([*train_ae, *data_settings(dataset), *short, "--set", "train.batch_size=4"]) == 0
    tokens = ["--set", "model.condition.kind=text-tokens", "--set", "model.condition.text_tokens=8"]
    train_base = ["train-base", "--autoencoder", str(ae), "--preset", "tiny", *tokens, *short]
    assert main([*train_base, "--set", "train.batch_size=4", "--run-dir", str(base)]) == 0
    results = [record for record in read_metrics(base) if record["split"] == "eval"][-1]
    assert np.isfinite(results["base_elbo_bits_per_pixel"])
    assert (base / "samples" / "step_00000004.png").exists()

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("dog face\ngrinning face, in apple style\n")
    out = tmp_path / "samples"
    sample = ["sample", "--run", str(base), "--prompt", "cat face", "--prompt-file", str(prompts)]
    steps = ["--steps", "3", "--decoder-steps", "2"]
    assert main([*sample, "--num", "2", *steps, "--out", str(out)]) == 0
    images = np.load(out / "samples.npz")["images"]
    assert images.shape == (6, 3, 8, 8) and images.dtype == np.uint8
    meta = json.loads((out / "sample.json").read_text())
    assert meta["prompt"] == ["cat face", "dog face", "grinning face, in apple style"]
    with Image.open(out / "grid.png") as grid:
        assert grid.width == 2 * (128 + 4) + 4  # two samples per prompt, one row each

    evaluate = ["evaluate", "--run", str(base), "--num", "4", "--no-fid", "--base-steps", "2"]
    assert main([*evaluate, "--decoder-steps", "2"]) == 0  # held-out ELBO on test captions
    evaluated = json.loads((base / "eval" / "eval.json").read_text())
    assert np.isfinite(evaluated["metrics"]["base_elbo_bits_per_pixel"])
    # text-to-image: samples are drawn for the captions of the held-out images they are scored on
    assert "fixed caption of held-out image" in evaluated["settings"]["classes"]
    assert "not measured" in evaluated["notes"]["r1"]  # no alignment metric for 8×8 images


@pytest.mark.slow
def test_pixel_baseline_trains_on_captions(dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "pixel"
    settings = [f"pixel.{argument}" if argument.startswith("data.") else argument
                for argument in data_settings(dataset)]  # fmt: skip
    tokens = ["--set", "model.condition.kind=text-tokens", "--set", "model.condition.text_tokens=8"]
    train = ["train-base", "--preset", "pixel-tiny", "--run-dir", str(run), *settings, *tokens]
    short = ["--set", "train.max_steps=2", "--set", "train.eval_every=2"]
    assert main([*train, *short, "--set", "train.batch_size=4"]) == 0
    assert list((run / "samples").glob("step_*.png"))
