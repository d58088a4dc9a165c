"""Fréchet Video Distance (Unterthiner et al. 2018): the Fréchet distance of Gaussians fitted to
Kinetics-400 I3D outputs of real and generated clips.

Preprocessing follows the original FVD code: the first 16 frames, every frame bilinearly resized
to 224×224 on 0–255 floats (TF1 `resize_bilinear`, the same legacy sampling as our FID's
Inception resize), then 2x/255 − 1. Features are the 400 logits by default, as in that code and
its common ports; `kind="features"` takes the 1024-d pre-logit average pool instead. Float clips
in [−1, 1] are first quantised to 8 bits like saved videos (and FID's images), greyscale is
repeated to RGB. FVD is biased for small N and only comparable between equal N and equal
settings, so results carry N ("FVD@N") and reference statistics are cached under a key holding
the data set, split, size, N, the weights' sha256, the feature kind and the frame count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from unified_latents.metrics.frechet import (
    Statistics,
    frechet_distance,
    frechet_distance_of_features,
    statistics_from_features,
)
from unified_latents.metrics.i3d import I3D_RESOLUTION, MIN_FRAMES
from unified_latents.metrics.i3d_weights import default_weights_path, load_i3d
from unified_latents.metrics.inception import (
    batched_features,
    images_to_uint8,
    resize_legacy_bilinear,
)
from unified_latents.metrics.reference_stats import (
    WeightsFile,
    cached_reference_statistics,
    reference_key,
)

FVD_FRAMES = 16  # clip length of the original FVD
FeatureKind = Literal["logits", "features"]


def clips_to_uint8(clips: Tensor) -> Tensor:
    """uint8 clips pass through; float clips in [−1, 1] are rounded to 8 bits (values clamped)."""
    if clips.dtype == torch.uint8:
        return clips
    if not clips.is_floating_point():
        raise ValueError(f"expected uint8 or float clips in [-1, 1], got {clips.dtype}")
    return images_to_uint8(clips, (-1.0, 1.0))


def preprocess_clips(clips: Tensor, num_frames: int = FVD_FRAMES) -> Tensor:
    """Clips [N, C∈{1,3}, T ≥ num_frames, H, W] (uint8, or float in [−1, 1]) → float32
    [N, 3, num_frames, 224, 224] in [−1, 1]: first `num_frames` frames, TF1 bilinear resize of
    0–255 values, 2x/255 − 1."""
    if clips.dim() != 5:
        raise ValueError(f"expected clips [N, C, T, H, W], got shape {tuple(clips.shape)}")
    channels, frames = clips.shape[1], clips.shape[2]
    if channels not in (1, 3):
        raise ValueError(f"expected 1 (greyscale) or 3 (RGB) channels, got {channels}")
    if num_frames < MIN_FRAMES or frames < num_frames:
        raise ValueError(
            f"FVD uses {num_frames} frames per clip (I3D needs ≥ {MIN_FRAMES}); "
            f"the clips have {frames}"
        )
    videos = clips_to_uint8(clips[:, :, :num_frames]).float().expand(-1, 3, -1, -1, -1)
    if videos.shape[-2:] != (I3D_RESOLUTION, I3D_RESOLUTION):
        videos = resize_legacy_bilinear(videos, I3D_RESOLUTION)  # acts on the last two axes
    return videos * (2.0 / 255.0) - 1.0  # [N, 3, num_frames, 224, 224]


class I3DFeatures(WeightsFile):
    """I3D logits [N, 400] (or pre-logit features [N, 1024]) of clips, for FVD."""

    def __init__(
        self,
        path: str | Path | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        kind: FeatureKind = "logits",
        num_frames: int = FVD_FRAMES,
    ) -> None:
        if kind not in ("logits", "features"):
            raise ValueError(f"kind must be 'logits' or 'features', got {kind!r}")
        self.path = Path(path) if path is not None else default_weights_path()
        self.device, self.dtype = torch.device(device), dtype
        self.kind, self.num_frames = kind, num_frames
        self.network = load_i3d(self.path, self.device, dtype)
        self.dim = (
            self.network.logits.out_channels if kind == "logits" else self.network.feature_dim
        )

    @torch.inference_mode()
    def features(
        self, clips: Tensor | np.ndarray, batch_size: int = 4, progress: bool = True
    ) -> np.ndarray:
        """Features float64 [N, D] of clips [N, C, T, H, W] (uint8, or float in [−1, 1])."""

        def extract(batch: Tensor) -> Tensor:
            videos = preprocess_clips(batch.to(self.device), self.num_frames).to(self.dtype)
            output = self.network(videos)
            return output.logits if self.kind == "logits" else output.features

        clips = torch.as_tensor(clips)
        return batched_features(
            clips, extract, self.dim, batch_size, progress, "I3D features", "clip"
        )

    def cache_key(self, dataset: str, split: str, clip_size: int, num_clips: int) -> dict[str, Any]:
        """Reference-statistics key: FID's facts plus the feature kind and frame count."""
        key = reference_key(dataset, split, clip_size, num_clips, self.fingerprint)
        return {**key, "metric": "fvd", "feature": self.kind, "num_frames": self.num_frames}


@dataclass(frozen=True)
class FVDResult:
    """FVD between `num_generated` and `num_reference` clips; `name` carries N ("FVD@N")."""

    value: float
    num_generated: int
    num_reference: int
    kind: FeatureKind = "logits"

    @property
    def name(self) -> str:
        return f"FVD@{self.num_generated}"

    def as_dict(self) -> dict[str, Any]:
        return {
            self.name: self.value,
            "num_generated": self.num_generated,
            "num_reference": self.num_reference,
            "feature": self.kind,
        }


def fvd_from_features(
    generated: np.ndarray, reference: np.ndarray | Statistics, kind: FeatureKind = "logits"
) -> FVDResult:
    """FVD of generated features [N, D] against reference features [M, D] or their statistics."""
    generated = np.asarray(generated, dtype=np.float64)
    if generated.ndim != 2 or generated.shape[0] < 2:
        raise ValueError(f"FVD needs features of at least 2 clips, got shape {generated.shape}")
    if isinstance(reference, Statistics):
        value = frechet_distance(statistics_from_features(generated), reference)
        return FVDResult(value, generated.shape[0], reference.num, kind)
    reference = np.asarray(reference, dtype=np.float64)
    if reference.ndim != 2 or reference.shape[0] < 2:
        raise ValueError(f"FVD needs features of at least 2 clips, got shape {reference.shape}")
    value = frechet_distance_of_features(generated, reference)
    return FVDResult(value, generated.shape[0], reference.shape[0], kind)


def reference_statistics(
    extractor: I3DFeatures,
    key: dict[str, Any],
    reference_clips: Callable[[], Tensor | np.ndarray],
    cache_dir: Path | None = None,
    progress: bool = True,
) -> Statistics:
    """Cached statistics of the reference clips (`extractor.cache_key(...)` as `key`); the clips
    are loaded and run through I3D only on a cache miss."""
    return cached_reference_statistics(
        key, lambda: extractor.features(reference_clips(), progress=progress), cache_dir
    )


def frechet_video_distance(
    generated_clips: Tensor | np.ndarray,
    reference: Tensor | np.ndarray | Statistics,
    extractor: I3DFeatures,
    batch_size: int = 4,
    progress: bool = True,
) -> FVDResult:
    """FVD@N of generated clips against reference clips or cached reference statistics."""
    generated = extractor.features(generated_clips, batch_size, progress)
    if not isinstance(reference, Statistics):
        reference = extractor.features(reference, batch_size, progress)
    return fvd_from_features(generated, reference, extractor.kind)
