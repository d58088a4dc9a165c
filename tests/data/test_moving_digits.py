"""Moving digits: determinism, motion within the frame, rendering, the 32×32 variant, splits."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from unified_latents.data.containers import DatasetNotFoundError
from unified_latents.data.moving_digits import (
    MovingDigitsConfig,
    bounce,
    downsample_2x,
    generate,
    moving_digits,
    render,
    trajectories,
)
from unified_latents.data.sources import fashion_mnist


def _sources(count: int = 50, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random 28×28 "digits" (each one distinct) and labels."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(1, 256, (count, 1, 28, 28), generator=generator, dtype=torch.uint8)
    return images, torch.arange(count) % 10


def test_same_seed_same_clips_and_prefix_stability() -> None:
    images, labels = _sources()
    config = MovingDigitsConfig(num_frames=16)
    first = generate(images, labels, "train", 6, config)
    again = generate(images, labels, "train", 6, config)
    assert first.clips.shape == (6, 1, 16, 64, 64) and first.clips.dtype == torch.uint8
    assert torch.equal(first.clips, again.clips) and torch.equal(first.sources, again.sources)
    fewer = generate(images, labels, "train", 3, config)  # clip i depends on (seed, split, i) only
    assert torch.equal(fewer.clips, first.clips[:3])
    other_seed = generate(images, labels, "train", 6, MovingDigitsConfig(num_frames=16, seed=1))
    assert not torch.equal(other_seed.clips, first.clips)
    test_split = generate(images, labels, "test", 6, config)
    assert not torch.equal(test_split.sources, first.sources)  # different streams per split
    assert torch.equal(first.labels, labels[first.sources])


def test_bounce_reflects_at_both_walls() -> None:
    # From 1 at speed −3 on [0, 10]: −2 → 2 (velocity +3), 5, 8, 11 → 9 (velocity −3), 6.
    assert bounce(1.0, -3.0, 7, 10.0).tolist() == [1.0, 2.0, 5.0, 8.0, 9.0, 6.0, 3.0]


def test_trajectories_stay_in_the_frame_and_move() -> None:
    config = MovingDigitsConfig(num_frames=20, num_digits=3)
    corners = trajectories(np.random.default_rng(0), config)
    assert corners.shape == (3, 20, 2)
    assert corners.min() >= 0 and corners.max() <= 64 - 28
    steps = np.abs(np.diff(corners, axis=1)).max(axis=2)  # largest per-axis move each frame
    assert steps.max() <= 5 and (steps > 0).mean() > 0.9  # ≤ 4 px/frame (+1 from rounding)


def test_render_places_digits_with_max() -> None:
    digits = np.zeros((2, 28, 28), dtype=np.uint8)
    digits[0, 0, 0], digits[1, 0, 0], digits[1, 27, 27] = 100, 50, 200
    corners = np.array([[[0, 0], [3, 4]], [[0, 0], [36, 36]]])  # [D=2, T=2, 2]
    frames = render(digits, corners)
    assert frames.shape == (2, 64, 64)
    assert frames[0, 0, 0] == 100 and frames[0, 27, 27] == 200  # overlap keeps the max
    assert frames[1, 3, 4] == 100 and frames[1, 36, 36] == 50 and frames[1, 63, 63] == 200
    assert np.count_nonzero(frames[1]) == 3


def test_32_variant_is_the_64_video_box_downsampled() -> None:
    images, labels = _sources()
    big = generate(images, labels, "train", 2, MovingDigitsConfig(num_frames=16))
    small = generate(images, labels, "train", 2, MovingDigitsConfig(frame_size=32, num_frames=16))
    assert small.clips.shape == (2, 1, 16, 32, 32)
    assert torch.equal(small.clips, torch.from_numpy(downsample_2x(big.clips.numpy())))
    block = np.array([[[0, 1], [2, 3]]], dtype=np.uint8)  # mean 1.5 → 2 (half up)
    assert downsample_2x(block).tolist() == [[[2]]]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"frame_size": 48}, "64 or 32"),
        ({"num_frames": 0}, "num_frames"),
        ({"min_speed": 5.0, "max_speed": 4.0}, "min_speed"),
    ],
)
def test_bad_settings_fail_with_one_line(settings: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MovingDigitsConfig(**settings)  # type: ignore[arg-type]


def _digests(images: torch.Tensor) -> set[str]:
    return {hashlib.sha256(image.numpy().tobytes()).hexdigest() for image in images}


@pytest.mark.slow  # reads all 70k Fashion-MNIST images: a few seconds on shared cores
def test_no_source_digit_is_shared_across_splits() -> None:
    try:
        train_images = fashion_mnist("", "train", 28).images
        test_images = fashion_mnist("", "test", 28).images
    except DatasetNotFoundError as error:
        pytest.skip(f"Fashion-MNIST not installed: {error}")
    config = MovingDigitsConfig(num_frames=16)
    test = moving_digits("test", 40, config)
    train = generate(train_images, torch.zeros(len(train_images)), "train", 40, config)
    # The loader draws from the split it is asked for: the same clips as from those images...
    from_test_images = generate(test_images, torch.zeros(len(test_images)), "test", 40, config)
    assert torch.equal(test.clips, from_test_images.clips)
    # ...and no image content is in both splits, so no source digit is shared.
    assert not _digests(train_images) & _digests(test_images)
    assert int(train.sources.max()) < len(train_images) and int(test.sources.max()) < len(
        test_images
    )
    assert train.clips.shape == (40, 1, 16, 64, 64) and train.clips.float().mean() > 5
