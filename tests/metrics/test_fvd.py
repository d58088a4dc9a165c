"""FVD: clip preprocessing, the distance on features (closed forms), and the pipeline end to end
on a tiny synthetic I3D checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import random_uint8
from tests.metrics.i3d_synthetic import NUM_CLASSES, WIDTH_DIVISOR, synthetic_weights, write_weights
from unified_latents.metrics.frechet import statistics_from_features
from unified_latents.metrics.fvd import (
    FVDResult,
    I3DFeatures,
    frechet_video_distance,
    fvd_from_features,
    preprocess_clips,
    reference_statistics,
)
from unified_latents.metrics.inception import images_to_uint8, resize_legacy_bilinear


def test_preprocess_shapes_range_and_frame_cut() -> None:
    clips = random_uint8((2, 3, 20, 32, 32))
    out = preprocess_clips(clips)
    assert out.shape == (2, 3, 16, 224, 224) and out.dtype == torch.float32
    assert out.min() >= -1.0 - 1e-6 and out.max() <= 1.0 + 1e-6  # resize weights sum to 1 ± ε
    # The first 16 frames, each resized like FID's frames, then 2x/255 − 1.
    frame = resize_legacy_bilinear(clips[:, :, 15].float(), 224) * (2 / 255) - 1
    torch.testing.assert_close(out[:, :, 15], frame)


def test_preprocess_at_224_only_rescales() -> None:
    clips = torch.tensor([0, 255], dtype=torch.uint8).repeat(1, 3, 16, 224, 112)
    out = preprocess_clips(clips)
    assert out.min().item() == -1.0 and out.max().item() == 1.0  # 0 → −1 and 255 → +1


def test_preprocess_greyscale_and_float_input() -> None:
    grey = random_uint8((1, 1, 16, 16, 16))
    torch.testing.assert_close(preprocess_clips(grey), preprocess_clips(grey.repeat(1, 3, 1, 1, 1)))
    floats = torch.rand(2, 3, 16, 16, 16) * 2 - 1
    torch.testing.assert_close(preprocess_clips(floats), preprocess_clips(images_to_uint8(floats)))


@pytest.mark.parametrize(
    ("clips", "message"),
    [
        (torch.zeros(2, 3, 16, 8, dtype=torch.uint8), r"\[N, C, T, H, W\]"),
        (torch.zeros(2, 4, 16, 8, 8, dtype=torch.uint8), "channels"),
        (torch.zeros(2, 3, 12, 8, 8, dtype=torch.uint8), "16 frames"),
        (torch.zeros(2, 3, 16, 8, 8, dtype=torch.int64), "uint8 or float"),
    ],
)
def test_preprocess_rejects_bad_clips(clips: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        preprocess_clips(clips)


def test_identical_feature_sets_give_zero() -> None:
    rng = np.random.default_rng(0)
    few = rng.standard_normal((30, 400))  # N < D: the route without D × D matrices
    many = rng.standard_normal((60, 20))  # N ≥ D: the covariance route
    for features in (few, many):
        result = fvd_from_features(features, features.copy())
        assert abs(result.value) < 1e-8
        against_stats = fvd_from_features(features, statistics_from_features(features))
        assert abs(against_stats.value) < 1e-8


def test_a_mean_shift_costs_its_squared_norm() -> None:
    # Equal covariances: FVD = ‖μ_a − μ_b‖² exactly.
    features = np.random.default_rng(1).standard_normal((50, 8))
    shift = np.arange(8.0) / 4
    result = fvd_from_features(features + shift, features)
    assert result.value == pytest.approx(float(shift @ shift), rel=1e-9)


def test_result_reports_both_counts() -> None:
    rng = np.random.default_rng(2)
    result = fvd_from_features(rng.standard_normal((6, 4)), rng.standard_normal((9, 4)))
    assert (result.name, result.num_generated, result.num_reference) == ("FVD@6", 6, 9)
    assert result.as_dict()["FVD@6"] == result.value and result.as_dict()["num_reference"] == 9
    with pytest.raises(ValueError, match="at least 2 clips"):
        fvd_from_features(rng.standard_normal((1, 4)), rng.standard_normal((9, 4)))


@pytest.fixture(scope="module")
def tiny_extractor(tmp_path_factory: pytest.TempPathFactory) -> I3DFeatures:
    path = tmp_path_factory.mktemp("i3d") / "tiny.ckpt"
    return I3DFeatures(write_weights(path, synthetic_weights()))


def test_features_batching_and_kinds(tiny_extractor: I3DFeatures, tmp_path: Path) -> None:
    clips = random_uint8((3, 3, 16, 24, 24), seed=3)
    logits = tiny_extractor.features(clips, batch_size=2, progress=False)
    assert logits.shape == (3, NUM_CLASSES) and logits.dtype == np.float64
    one_by_one = tiny_extractor.features(clips, batch_size=1, progress=False)
    np.testing.assert_allclose(logits, one_by_one, rtol=1e-5, atol=1e-6)
    pooled = I3DFeatures(tiny_extractor.path, kind="features").features(clips, progress=False)
    assert pooled.shape == (3, 1024 // WIDTH_DIVISOR)
    assert tiny_extractor.features(clips[:0], progress=False).shape == (0, NUM_CLASSES)


def _graded_clips(brightness: list[float], seed: int) -> torch.Tensor:
    """Greyscale noise clips, one per brightness: sets whose I3D features really differ."""
    noise = random_uint8((len(brightness), 1, 16, 24, 24), seed).float()
    scale = torch.tensor(brightness).view(-1, 1, 1, 1, 1)
    return (noise * scale).round().to(torch.uint8)


def test_fvd_of_a_set_with_itself_is_zero(tiny_extractor: I3DFeatures) -> None:
    clips = _graded_clips([0.2, 0.6, 1.0], seed=4)
    result = frechet_video_distance(clips, clips, tiny_extractor, progress=False)
    assert isinstance(result, FVDResult) and result.name == "FVD@3"
    darker = frechet_video_distance(
        clips, _graded_clips([0.1, 0.2, 0.3], seed=5), tiny_extractor, progress=False
    )
    assert abs(result.value) < 1e-6 * darker.value and darker.value > 1e-3


def test_reference_statistics_are_cached(tiny_extractor: I3DFeatures, tmp_path: Path) -> None:
    loads = []

    def load_reference() -> torch.Tensor:
        loads.append(1)
        return random_uint8((3, 3, 16, 24, 24), seed=6)

    key = tiny_extractor.cache_key("moving-digits", "test", 24, 3)
    assert key["feature"] == "logits" and key["num_frames"] == 16 and key["num_images"] == 3
    first = reference_statistics(tiny_extractor, key, load_reference, tmp_path, progress=False)
    second = reference_statistics(tiny_extractor, key, load_reference, tmp_path, progress=False)
    assert len(loads) == 1 and first.num == second.num == 3
    np.testing.assert_array_equal(first.mean, second.mean)
    result = frechet_video_distance(load_reference(), second, tiny_extractor, progress=False)
    assert abs(result.value) < 1e-6 and result.num_reference == 3
