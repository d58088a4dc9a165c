"""Moving digits: Fashion-MNIST images bouncing inside a frame, a small video set (issue 17).

After Moving MNIST (Srivastava et al. 2015), with Fashion-MNIST's 28×28 images as the "digits":
each clip shows `num_digits` images (two by default), each starting at a uniform position in a
64×64 frame and moving in a uniform direction at a uniform speed (2–4 pixels a frame); a digit
that would leave the frame bounces off the edge (its position is reflected and the velocity
component flips). Digits are composed with a pixel-wise max, so overlaps stay in [0, 255]. The
32×32 variant is the 64×64 video averaged over 2×2 blocks (same motion, half the resolution).

Deterministic: clip i of a split depends only on (seed, split, i), so the first k clips are the
same whatever the number asked for. Train clips take their digits only from Fashion-MNIST's
60k training images and test clips only from its 10k test images (which share no image), so no
source digit appears in both splits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from unified_latents.data.containers import DataError, Split
from unified_latents.data.sources import FASHION_MNIST_CLASSES, fashion_mnist

CANVAS_SIZE = 64  # frames are rendered at 64×64; the 32×32 variant is a 2×2 box downsample
DIGIT_SIZE = 28
FRAME_SIZES = (64, 32)
_SPLIT_CODES = {"train": 0, "test": 1}  # part of every clip's seed


@dataclass(frozen=True, kw_only=True)
class MovingDigitsConfig:
    """How clips are made; speeds are in pixels per frame of the 64×64 canvas."""

    frame_size: int = 64
    num_frames: int = 20
    num_digits: int = 2
    min_speed: float = 2.0
    max_speed: float = 4.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.frame_size not in FRAME_SIZES:
            raise ValueError(f"frame_size must be 64 or 32, got {self.frame_size}")
        if self.num_frames < 1 or self.num_digits < 1:
            raise ValueError(
                f"need num_frames ≥ 1 and num_digits ≥ 1, got {self.num_frames}, {self.num_digits}"
            )
        if not 0 <= self.min_speed <= self.max_speed <= CANVAS_SIZE - DIGIT_SIZE:
            raise ValueError(
                f"need 0 ≤ min_speed ≤ max_speed ≤ {CANVAS_SIZE - DIGIT_SIZE} (one bounce a "
                f"frame at most), got {self.min_speed}, {self.max_speed}"
            )


@dataclass(frozen=True)
class MovingDigits:
    """Clips uint8 [N, 1, T, S, S] and, per clip, the split's image indices and classes used."""

    clips: Tensor
    sources: Tensor  # int64 [N, num_digits]: indices into the Fashion-MNIST split
    labels: Tensor  # int64 [N, num_digits]: their classes (see `class_names`)
    split: Split
    class_names: tuple[str, ...] = FASHION_MNIST_CLASSES

    def __len__(self) -> int:
        return self.clips.shape[0]


def bounce(start: float, velocity: float, num_frames: int, limit: float) -> np.ndarray:
    """Positions [T] of a point starting at `start` ∈ [0, limit] moving at `velocity` per frame,
    reflected at 0 and `limit` (frame 0 is the start)."""
    positions = np.empty(num_frames)
    position = start
    for frame in range(num_frames):
        positions[frame] = position
        position += velocity
        if position < 0:
            position, velocity = -position, -velocity
        elif position > limit:
            position, velocity = 2 * limit - position, -velocity
    return positions


def trajectories(rng: np.random.Generator, config: MovingDigitsConfig) -> np.ndarray:
    """Integer top-left corners [num_digits, T, 2] (row, column) on the 64×64 canvas."""
    limit = CANVAS_SIZE - DIGIT_SIZE
    corners = np.empty((config.num_digits, config.num_frames, 2), dtype=np.int64)
    for digit in range(config.num_digits):
        start = rng.uniform(0, limit, 2)
        angle = rng.uniform(0, 2 * np.pi)
        speed = rng.uniform(config.min_speed, config.max_speed)
        velocity = speed * np.array([np.sin(angle), np.cos(angle)])
        for axis in range(2):
            path = bounce(start[axis], velocity[axis], config.num_frames, limit)
            corners[digit, :, axis] = np.rint(path)  # within [0, limit]: reflection keeps it there
    return corners


def render(digits: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """digits uint8 [D, 28, 28] at corners [D, T, 2] → frames uint8 [T, 64, 64] (pixel-wise max)."""
    num_frames = corners.shape[1]
    frames = np.zeros((num_frames, CANVAS_SIZE, CANVAS_SIZE), dtype=np.uint8)
    for digit, path in zip(digits, corners, strict=True):
        for frame, (top, left) in enumerate(path):
            window = frames[frame, top : top + DIGIT_SIZE, left : left + DIGIT_SIZE]
            np.maximum(window, digit, out=window)
    return frames


def downsample_2x(frames: np.ndarray) -> np.ndarray:
    """uint8 [..., 2H, 2W] → [..., H, W]: mean of each 2×2 block, rounded half up."""
    height, width = frames.shape[-2] // 2, frames.shape[-1] // 2
    blocks = frames.reshape(*frames.shape[:-2], height, 2, width, 2).astype(np.uint16)
    return ((blocks.sum(axis=(-3, -1)) + 2) // 4).astype(np.uint8)


def generate(
    images: Tensor, labels: Tensor, split: Split, num_clips: int, config: MovingDigitsConfig
) -> MovingDigits:
    """`num_clips` clips whose digits are drawn (uniformly, with replacement) from `images`
    uint8 [M, 1, 28, 28] (or [M, 28, 28]) with classes `labels` [M]."""
    pixels = images.reshape(images.shape[0], -1).numpy()
    if images.dtype != torch.uint8 or pixels.shape[1] != DIGIT_SIZE * DIGIT_SIZE:
        raise DataError(
            f"moving digits need uint8 28×28 images, got {images.dtype} {tuple(images.shape)}"
        )
    if images.shape[0] == 0 or num_clips < 0:
        raise DataError(f"need source images and num_clips ≥ 0, got {images.shape[0]}, {num_clips}")
    digits = pixels.reshape(-1, DIGIT_SIZE, DIGIT_SIZE)
    size = config.frame_size
    clips = np.empty((num_clips, 1, config.num_frames, size, size), dtype=np.uint8)
    sources = np.empty((num_clips, config.num_digits), dtype=np.int64)
    for index in range(num_clips):
        rng = np.random.default_rng([config.seed, _SPLIT_CODES[split], index])
        sources[index] = rng.integers(0, digits.shape[0], config.num_digits)
        frames = render(digits[sources[index]], trajectories(rng, config))  # [T, 64, 64]
        clips[index, 0] = frames if size == CANVAS_SIZE else downsample_2x(frames)
    chosen = torch.from_numpy(sources)
    return MovingDigits(torch.from_numpy(clips), chosen, labels[chosen].to(torch.int64), split)


def moving_digits(
    split: Split, num_clips: int, config: MovingDigitsConfig | None = None, root: str = ""
) -> MovingDigits:
    """Moving Fashion-MNIST digits from the installed Fashion-MNIST `split` (see module doc)."""
    source = fashion_mnist(root, split, DIGIT_SIZE)  # [M, 1, 28, 28]: 28 fits, so no resize
    return generate(source.images, source.labels, split, num_clips, config or MovingDigitsConfig())
