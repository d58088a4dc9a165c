"""FVD@N for `ul evaluate` on video runs (metrics/fvd.py): the video counterpart of the FID block
in `evaluation/fid.py`. Clips shorter than I3D's minimum are not measured, and the note says so."""

from __future__ import annotations

import time

import torch
from torch import Tensor

from unified_latents.evaluation.fid import EvaluationError
from unified_latents.metrics.fvd import FVD_FRAMES, I3DFeatures, frechet_video_distance
from unified_latents.metrics.i3d import MIN_FRAMES


def video_distance(
    prefix: str, clips: Tensor, reference: Tensor, device: torch.device, progress: bool
) -> tuple[dict[str, float], dict[str, str], dict[str, float]]:
    """({prefix}fvd, notes, seconds) of uint8 clips [N, C, T, H, W] against reference clips
    (I3D logits, the first 16 frames of each clip at 224×224)."""
    name, frames = f"{prefix}fvd", clips.shape[2]
    if frames < MIN_FRAMES:
        return {}, {name: f"not measured: clips of {frames} frames (I3D needs ≥ {MIN_FRAMES})"}, {}
    start = time.perf_counter()
    try:
        extractor = I3DFeatures(device=device)
    except FileNotFoundError as error:
        raise EvaluationError(str(error)) from None
    result = frechet_video_distance(clips, reference, extractor, progress=progress)
    used = min(frames, FVD_FRAMES)
    note = (
        f"FVD@{result.num_generated} vs {result.num_reference} test clips "
        f"(Kinetics-400 I3D logits, first {used} frames at 224×224)"
    )
    return {name: result.value}, {name: note}, {f"{prefix}fvd": time.perf_counter() - start}
