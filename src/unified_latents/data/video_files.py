"""Real video clips from a directory: video files and folders of frames, cut into fixed-length
clips uint8 [C, T, H, W] (issue 17).

A *clip source* is a video file (suffix in `VIDEO_SUFFIXES`) or a directory that directly holds
image files (its frames, in natural name order: frame_2 before frame_10). Sources in first-level
subdirectories of the root are labelled by that subdirectory (Kinetics-style class folders),
else unlabelled (-1). The split is `root/train` + `root/test` (or `root/val`) when both exist,
else a deterministic holdout by a hash of each source's path: every clip of a video falls in the
same split, whatever the listing order.

Every source is indexed when the dataset is built (`video_decode.probe`: a demux, no decoding):
unreadable files are skipped and named in one warning, sources with fewer frames than one clip
spans, `(num_frames − 1) · frame_stride + 1`, are skipped and counted in another. Decoding is
lazy: a source that fails to decode later is warned about, counted against
`max_bad_fraction`, and replaced by the next source, as image folders do (`data/folder.py`).

Item `i` is clip `i mod clips_per_video` of source `i // clips_per_video`. Training items
(`random_crops=True`) start at a uniform frame and take a random square (`random_crop_min_area`)
drawn from (seed, epoch, index), so resumed streams reproduce them; the stream passes
`epoch · len(self) + index` (see `epoch_indexed`, read by `data/stream.py`). Evaluation items
take the centres of `clips_per_video` equal stretches of the source and the centred square.

Listing the sources and splitting them is `data/video_sources.py`'s.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from unified_latents.data.containers import (
    DataError,
    Split,
    derived_seed,
)
from unified_latents.data.decode import BadFileLog, LazyImageDataset, random_square
from unified_latents.data.video_decode import (
    BadVideoWarning,
    ClipIndex,
    describe_video_failure,
    probe,
    read_clip,
)
from unified_latents.data.video_sources import ClipSource, list_sources


@dataclass(frozen=True, kw_only=True)
class VideoClipsConfig:
    """Where the clips are and how they are cut. `random_crop_min_area`: the training square
    covers at least this fraction of the largest square (1 = the largest, at a random place)."""

    root: str
    num_frames: int = 16
    frame_size: int = 64
    frame_stride: int = 1  # take every k-th source frame
    channels: int = 3
    clips_per_video: int = 1
    random_crop_min_area: float = 1.0
    holdout_size: int = 100  # test sources when the root has no train/test subdirectories
    max_bad_fraction: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        counts = {
            "num_frames": self.num_frames,
            "frame_size": self.frame_size,
            "frame_stride": self.frame_stride,
            "clips_per_video": self.clips_per_video,
            "holdout_size": self.holdout_size,
        }
        for name, value in counts.items():
            if value < 1:
                raise ValueError(f"{name} must be ≥ 1, got {value}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if not 0.0 < self.random_crop_min_area <= 1.0:
            raise ValueError(
                f"random_crop_min_area must be in (0, 1], got {self.random_crop_min_area}"
            )
        if not 0.0 <= self.max_bad_fraction <= 1.0:
            raise ValueError(f"max_bad_fraction must be in [0, 1], got {self.max_bad_fraction}")

    @property
    def span(self) -> int:
        """Source frames one clip covers."""
        return (self.num_frames - 1) * self.frame_stride + 1


class VideoClips(LazyImageDataset):
    """Fixed-length clips of one split: items `(clip uint8 [C, T, S, S], label)`."""

    def __init__(
        self,
        sources: list[ClipSource],
        class_names: tuple[str, ...],
        config: VideoClipsConfig,
        random_crops: bool,
    ) -> None:
        self.config, self.class_names, self.random_crops = config, class_names, random_crops
        self.clip_shape = (config.channels, config.num_frames, config.frame_size, config.frame_size)
        self.image_shape = self.clip_shape
        self.epoch_indexed = random_crops  # read by data/stream.py
        self.log = BadFileLog(
            config.max_bad_fraction, total=len(sources), kind="video", category=BadVideoWarning
        )
        indexed: list[tuple[ClipSource, ClipIndex]] = []
        too_short: list[tuple[ClipSource, ClipIndex]] = []
        unreadable: dict[str, str] = {}  # path → reason
        for source in sources:
            try:
                index = probe(source.path, source.frame_files)
            except Exception as error:  # PyAV raises many types (InvalidDataError, OSError…)
                unreadable[str(source.path)] = describe_video_failure(error)
                continue
            (indexed if index.num_frames >= config.span else too_short).append((source, index))
        _warn_skipped(unreadable, too_short, config)
        self.log.add_known(list(unreadable))
        if not indexed:
            raise DataError(
                f"none of the {len(sources)} videos under {config.root} is readable and holds "
                f"{config.span} frames (num_frames={config.num_frames}, "
                f"frame_stride={config.frame_stride}); add longer videos or shorten the clips"
            )
        self.sources = [source for source, _ in indexed]
        self.indices = [index for _, index in indexed]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.sources) * self.config.clips_per_video

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        epoch = 0
        if self.epoch_indexed and index >= 0:
            epoch, index = divmod(index, len(self))
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips")
        video, part = divmod(index, self.config.clips_per_video)
        found = self.log.first_readable(
            video, len(self.sources), lambda candidate: self._decode(candidate, part, epoch, index)
        )
        if found is None:
            raise DataError(f"no video under {self.config.root} can be decoded")
        candidate, clip = found
        return clip, self.sources[candidate].label

    def frame_numbers(self, video: int, part: int, epoch: int = 0, index: int = 0) -> list[int]:
        """The source frames of clip `part` of source `video` (random starts use epoch, index)."""
        config, num_frames = self.config, self.indices[video].num_frames
        starts = num_frames - config.span + 1  # possible first frames
        if self.random_crops:
            generator = torch.Generator().manual_seed(derived_seed(config.seed, epoch, index))
            start = int(torch.randint(starts, (), generator=generator))
        else:  # the centre of stretch `part` of `clips_per_video` equal stretches
            start = (2 * part + 1) * starts // (2 * config.clips_per_video)
        return list(range(start, start + config.span, config.frame_stride))

    def _decode(self, video: int, part: int, epoch: int, index: int) -> Tensor | None:
        config, source = self.config, self.sources[video]
        crop = None
        if self.random_crops:
            seed = derived_seed(config.seed, epoch, index, 1)

            def crop(width: int, height: int) -> tuple[int, int, int]:
                return random_square(width, height, seed, config.random_crop_min_area)

        frames, clip_index = self.frame_numbers(video, part, epoch, index), self.indices[video]
        return self.log.read(
            video,
            str(source.path),
            lambda: read_clip(
                source.path, clip_index, frames, config.frame_size, config.channels, crop
            ),
            describe_video_failure,
        )


def video_clips(
    config: VideoClipsConfig, split: Split, random_crops: bool | None = None
) -> VideoClips:
    """The clips of `split` under `config.root`; random crops default to the train split."""
    sources, class_names = list_sources(Path(config.root).expanduser(), split, config.holdout_size)
    crops = split == "train" if random_crops is None else random_crops
    return VideoClips(sources, class_names, config, crops)


def _warn_skipped(
    unreadable: dict[str, str],
    too_short: list[tuple[ClipSource, ClipIndex]],
    config: VideoClipsConfig,
) -> None:
    if unreadable:
        warnings.warn(
            f"skipping {len(unreadable)} unreadable video(s) under {config.root}: "
            + "; ".join(f"{name} ({reason})" for name, reason in unreadable.items()),
            BadVideoWarning,
            stacklevel=4,  # the caller of video_clips
        )
    if too_short:
        shortest = min(index.num_frames for _, index in too_short)
        warnings.warn(
            f"skipping {len(too_short)} video(s) under {config.root} shorter than one clip "
            f"({config.span} frames: num_frames={config.num_frames}, frame_stride="
            f"{config.frame_stride}; the shortest has {shortest}), e.g. {too_short[0][0].path}",
            BadVideoWarning,
            stacklevel=4,  # the caller of video_clips
        )
