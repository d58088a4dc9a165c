"""What `ul evaluate` measures on clips (issue 17): FVD@N (metrics/fvd.py, the Kinetics-400 I3D
port) where image runs report FID@N, and for frame prediction the trivial predictor beside the
model: copy-last repeats the last context frame, and every honest model must beat it.

- `video_distance`: FVD of clips against reference clips (reconstructions vs their originals,
  samples vs the first N test clips). Clips shorter than I3D's minimum are not measured.
- `video_quality`: generated clips vs the real clips they continue: FVD@N of both the model and
  copy-last, and PSNR of the generated frames only (per clip, over the frames after the context).
"""

from __future__ import annotations

import functools
import time

import torch
from torch import Tensor

from unified_latents.data.datasets import to_model_range
from unified_latents.evaluation.fid import EvaluationError
from unified_latents.evaluation.run import EvaluateOptions
from unified_latents.metrics.frechet import Statistics, statistics_from_features
from unified_latents.metrics.fvd import FVD_FRAMES, I3DFeatures, frechet_video_distance
from unified_latents.metrics.i3d import MIN_FRAMES
from unified_latents.metrics.image_quality import psnr


@functools.lru_cache(maxsize=2)
def i3d(device: str) -> I3DFeatures:
    """The I3D network (loaded once per device), or an EvaluationError saying how to install."""
    try:
        return I3DFeatures(device=device)
    except FileNotFoundError as error:
        raise EvaluationError(str(error)) from None


def video_distance(
    prefix: str,
    clips: Tensor,
    reference: Tensor | Statistics,
    device: torch.device,
    progress: bool,
) -> tuple[dict[str, float], dict[str, str], dict[str, float]]:
    """({prefix}fvd, notes, seconds) of uint8 clips [N, C, T, H, W] against reference clips (or
    their I3D statistics, `reference_features`): I3D logits of the first 16 frames at 224×224."""
    name, frames = f"{prefix}fvd", clips.shape[2]
    if frames < MIN_FRAMES:
        return {}, {name: f"not measured: clips of {frames} frames (I3D needs ≥ {MIN_FRAMES})"}, {}
    start = time.perf_counter()
    result = frechet_video_distance(clips, reference, i3d(str(device)), progress=progress)
    note = (
        f"FVD@{result.num_generated} vs {result.num_reference} clips (Kinetics-400 I3D logits, "
        f"first {min(frames, FVD_FRAMES)} frames at 224×224)"
    )
    return {name: result.value}, {name: note}, {name: time.perf_counter() - start}


def copy_last(clips: Tensor, context_frames: int) -> Tensor:
    """The trivial frame predictor: the context, then its last frame repeated."""
    predicted = clips.clone()
    predicted[:, :, context_frames:] = clips[:, :, context_frames - 1 : context_frames]
    return predicted


def video_quality(
    samples: Tensor, clips: Tensor, context_frames: int, options: EvaluateOptions
) -> tuple[dict[str, float], dict[str, str], dict[str, float]]:
    """Metrics of uint8 generated clips against the real test clips (`samples[i]` continues
    `clips[i]` when `context_frames` > 0; unconditional samples are compared as sets)."""
    device = torch.device("cpu") if options.extractor is None else options.extractor.device
    metrics: dict[str, float] = {"num_samples": float(samples.shape[0])}
    notes: dict[str, str] = {}
    seconds: dict[str, float] = {}
    candidates = {"g": samples}
    if context_frames:
        candidates["copy_last_"] = copy_last(clips, context_frames)
        truth = to_model_range(clips[:, :, context_frames:])
        for prefix, predicted in candidates.items():
            value = psnr(to_model_range(predicted[:, :, context_frames:]), truth).mean().item()
            metrics[f"{prefix}predicted_psnr_db"] = value
        count = clips.shape[2] - context_frames
        notes["gpredicted_psnr_db"] = (
            f"PSNR of the {count} generated frames vs the real ones, per clip, averaged over "
            f"{clips.shape[0]} test clips given their first {context_frames} frames"
        )
    if options.extractor is None:  # --no-fid: no Inception and no I3D
        return metrics, notes, seconds
    reference: Tensor | Statistics = clips
    if clips.shape[2] >= MIN_FRAMES:  # the real clips' I3D features once for every candidate
        features = i3d(str(device)).features(clips, progress=options.progress)
        reference = statistics_from_features(features)
    for prefix, predicted in candidates.items():
        fvd, fvd_notes, fvd_seconds = video_distance(
            prefix, predicted, reference, device, options.progress
        )
        metrics |= fvd
        who = "samples" if prefix == "g" else "copy-last predictor"
        notes |= {name: f"{who}: {text}" for name, text in fvd_notes.items()}
        seconds |= fvd_seconds
    return metrics, notes, seconds
