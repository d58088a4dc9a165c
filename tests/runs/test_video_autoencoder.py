"""Video runs (issue 17) on a folder of video files, as a user's own clips would be: train,
evaluate, reconstruct and load an autoencoder, train a frame-prediction base model on its latents
and sample from a test clip's context; moving digits through `data.name`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import unified_latents as ul
from tests.data.video_fixture import write_video
from unified_latents.cli import main
from unified_latents.data.containers import DataError, DatasetNotFoundError
from unified_latents.data.datasets import DataConfig, clip_frames, load_split


def video_folder(tmp_path: Path) -> list[str]:
    """Four short mp4 clips in tmp_path/videos, and the settings that train on them."""
    for number in range(4):
        write_video(tmp_path / "videos" / f"clip_{number}.mp4", num_frames=12)
    return [
        "data.name=video-folder",
        f"data.root={tmp_path / 'videos'}",
        "data.channels=3",
        "data.holdout_size=1",
        "data.clips_per_video=2",
    ]


@pytest.mark.slow
def test_train_evaluate_reconstruct_and_load_a_video_run(tmp_path: Path) -> None:
    run, settings = tmp_path / "run", video_folder(tmp_path)
    train = ["train", "autoencoder", "--preset", "moving-digits-tiny", "--run-dir", str(run)]
    assert main([*train, *(f"--set={setting}" for setting in settings)]) == 0
    assert (run / "reconstructions" / "step_00000006.gif").exists()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evaluation = [record for record in records if record["split"] == "eval"][-1]
    assert evaluation["bits_per_frame"] * 4 == pytest.approx(evaluation["bits_per_image"])

    assert main(["evaluate", "--run", str(run), "--num", "2", "--no-fid"]) == 0
    report = json.loads((run / "eval" / "eval.json").read_text())
    assert report["metrics"]["bits_per_frame"] > 0
    assert (run / "eval" / "reconstructions.gif").exists()
    assert main(["reconstruct", "--run", str(run), "--num", "2", "--steps", "2"]) == 0
    assert (run / "reconstruct" / "grid.png").exists()

    autoencoder = ul.load(run)
    assert isinstance(autoencoder, ul.Autoencoder)
    assert autoencoder.image_shape == (3, 4, 32, 32)
    clips = autoencoder.test_images(2)
    assert clips.shape == (2, 3, 4, 32, 32) and clips.dtype == torch.uint8
    assert autoencoder.encode(clips).shape == (2, *autoencoder.latent_shape)
    assert autoencoder.bits_per_pixel(clips).shape == (2,)
    assert autoencoder.reconstruct(clips, steps=2).shape == clips.shape

    # Stage 2: frame prediction on the cached video latents, then sampling from a test clip.
    base = tmp_path / "base"
    stage2 = ["train", "base", "--autoencoder", str(run), "--preset", "moving-digits-tiny"]
    assert main([*stage2, "--run-dir", str(base)]) == 0
    assert (base / "samples" / "step_00000006.gif").exists()
    out = tmp_path / "samples"
    sample = ["sample", "--run", str(base), "--num", "2", "--context", "0", "--out", str(out)]
    assert main([*sample, "--steps", "2", "--decoder-steps", "2"]) == 0
    samples = torch.from_numpy(np.load(out / "samples.npz")["images"])
    assert samples.shape == (2, 3, 4, 32, 32) and (out / "grid.gif").exists()
    assert torch.equal(samples[:, :, :2], clips[:, :, :2])  # the 2 given frames, as they were


def test_moving_digits_as_a_dataset() -> None:
    config = DataConfig(name="moving-digits", num_frames=5, num_clips=3, holdout_size=2)
    assert clip_frames(config) == 5 and clip_frames(DataConfig()) == 0
    try:
        test = load_split(config, "test")
    except DatasetNotFoundError as error:
        pytest.skip(f"Fashion-MNIST not installed: {error}")
    assert test.image_shape == (1, 5, 32, 32) and len(test) == 2
    clip, label = test[0]
    assert clip.dtype == torch.uint8 and label == -1
    with pytest.raises(DataError, match=r"moving-digits.*64 or 32"):
        load_split(DataConfig(name="moving-digits", image_size=48), "test")


def test_video_folder_needs_a_root() -> None:
    with pytest.raises(DatasetNotFoundError, match=r"data\.root"):
        load_split(DataConfig(name="video-folder"), "train")


@pytest.mark.slow
def test_the_kl_vae_video_baseline_trains_and_predicts_frames(tmp_path: Path) -> None:
    """`--preset kl-vae-moving-digits-tiny`: per-frame KL latents, a frame-prediction base model
    on them, and samples that keep the given context frame (one latent frame = one frame)."""
    settings = video_folder(tmp_path)
    run, base = tmp_path / "kl", tmp_path / "base"
    train = ["train", "autoencoder", "--preset", "kl-vae-moving-digits-tiny", "--run-dir", str(run)]
    assert main([*train, *(f"--set={setting}" for setting in settings)]) == 0
    autoencoder = ul.load(run)
    assert autoencoder.latent_shape[1] == 4  # one latent per frame
    stage2 = ["train", "base", "--autoencoder", str(run), "--preset", "moving-digits-tiny"]
    assert main([*stage2, "--run-dir", str(base)]) == 0
    out = tmp_path / "samples"
    sample = ["sample", "--run", str(base), "--num", "2", "--context", "0", "--out", str(out)]
    assert main([*sample, "--steps", "2"]) == 0
    samples = torch.from_numpy(np.load(out / "samples.npz")["images"])
    clips = autoencoder.test_images(2)
    assert samples.shape == (2, 3, 4, 32, 32)
    assert torch.equal(samples[:, :, :1], clips[:, :, :1])  # the given frame, as it was
