"""Video evaluation (evaluation/video.py): copy-last is the trivial predictor, PSNR covers only
the generated frames, and FVD@N of the model and copy-last come from the I3D port (a tiny
synthetic checkpoint here)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from tests.helpers import random_uint8
from tests.metrics.i3d_synthetic import synthetic_weights, write_weights
from unified_latents.evaluation import video
from unified_latents.evaluation.run import EvaluateOptions
from unified_latents.metrics.fvd import I3DFeatures


def _clips(count: int, frames: int, seed: int) -> torch.Tensor:
    return random_uint8((count, 1, frames, 24, 24), seed)


def _options(extractor: Any) -> EvaluateOptions:
    return EvaluateOptions(
        num=3,
        decoder_steps=None,
        base_steps=None,
        guidance=None,
        seed=0,
        extractor=extractor,
        cache_dir=None,
        progress=False,
    )


def test_copy_last_repeats_the_last_context_frame() -> None:
    clips = _clips(2, 6, seed=0)
    predicted = video.copy_last(clips, 2)
    assert torch.equal(predicted[:, :, :2], clips[:, :, :2])
    assert all(torch.equal(predicted[:, :, t], clips[:, :, 1]) for t in range(2, 6))


def test_psnr_scores_the_generated_frames_only() -> None:
    clips = _clips(3, 6, seed=1)
    perfect_future = clips.clone()
    perfect_future[:, :, :2] = 0  # wrong context frames are not scored
    metrics, notes, _ = video.video_quality(perfect_future, clips, 2, _options(None))
    assert metrics["gpredicted_psnr_db"] == float("inf")
    assert (
        metrics["copy_last_predicted_psnr_db"] < 20
        and "4 generated frames" in notes["gpredicted_psnr_db"]
    )
    assert "gfvd" not in metrics  # --no-fid: no I3D either


def test_fvd_of_the_model_and_of_copy_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extractor = I3DFeatures(write_weights(tmp_path / "tiny.ckpt", synthetic_weights()))
    monkeypatch.setattr(video, "i3d", lambda device: extractor)
    clips = _clips(3, 16, seed=2)
    cpu = SimpleNamespace(device=torch.device("cpu"))
    metrics, notes, _ = video.video_quality(clips, clips, 5, _options(cpu))
    assert metrics["gfvd"] == pytest.approx(0.0, abs=1e-6)  # the real clips themselves
    assert metrics["copy_last_fvd"] > 0.1  # frozen motion is not the real clips
    assert notes["gfvd"].startswith("samples: FVD@3 vs 3 clips")
    short = video.video_distance("r", clips[:, :, :4], clips[:, :, :4], torch.device("cpu"), False)
    assert short[0] == {} and "not measured" in short[1]["rfvd"]
