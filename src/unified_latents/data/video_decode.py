"""Reading frames of one clip (a video file or a folder of frame images) by frame number.

Video files are decoded in-process with PyAV (PyPI `av`, whose wheels bundle FFmpeg, so no
system ffmpeg is needed), chosen over `opencv-python-headless` and `imageio-ffmpeg` after
`benchmarks/video_decoders.py` (results/video_decoders.json). Decoding OpenCV's `vtest.avi`
(768×576 MS-MPEG4, 795 frames) to RGB on one thread costs about the same CPU with PyAV and
OpenCV (≈1,000–1,200 frames per CPU-second each) and twice as much with imageio-ffmpeg
(≈500–590: frames are piped from an ffmpeg subprocess); best wall-clock rates on this shared
2-core machine were PyAV 500–990 frames/s, OpenCV 170–200, imageio-ffmpeg 280–510. Speed being
even, PyAV wins on behaviour: it raises a typed error (`av.error.InvalidDataError`) for a
corrupt file where OpenCV returns zero frames silently; its packet timestamps number frames
exactly and allow seeking (below); and it writes H.264 MP4 for `visualize_video`.

Frame numbers are presentation order. `probe` demuxes the file without decoding (tens of ms):
the packets' timestamps, sorted, number the frames. This count is exact where the header's
frame count is not (OpenCV's `tree.avi` claims 444 frames and holds 68; a truncated file keeps
its header's count). `read_clip` seeks to the keyframe before the first wanted frame and
decodes forward, keeping the frames whose timestamps are wanted, so a crop late in a long video
does not decode the whole video. Files without usable timestamps are numbered in decode order
and decoded from the start.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image
from torch import Tensor

from unified_latents.data.containers import DataError
from unified_latents.data.decode import CropChooser, describe_failure, square_resize, to_channels

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".avi", ".mov", ".webm", ".mkv"})


class BadVideoWarning(UserWarning):
    """A video file or frame folder was skipped (unreadable, or too short for one clip)."""


@dataclass(frozen=True)
class ClipIndex:
    """What reading a clip needs: its frame count and, for a video file with usable timestamps,
    the presentation timestamps in order (None: number frames in decode order)."""

    num_frames: int
    timestamps: np.ndarray | None = None  # int64 [num_frames], strictly increasing
    frame_files: tuple[Path, ...] = ()  # a frame folder's images, in frame order


def describe_video_failure(error: BaseException) -> str:
    """A one-line reason; FFmpeg's errors without the path, which the warning names already."""
    reason = getattr(error, "strerror", None)
    return (
        f"{type(error).__name__}: {reason}" if isinstance(reason, str) else describe_failure(error)
    )


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key in which digit runs compare as numbers: frame_2 < frame_10."""
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in parts if part)


def probe(path: Path, frame_files: Sequence[Path] = ()) -> ClipIndex:
    """Index a clip: a frame folder by its (naturally sorted) `frame_files`, a video file by
    demuxing its first video stream. Raises on unreadable files; callers catch and count."""
    if frame_files:
        return ClipIndex(len(frame_files), frame_files=tuple(frame_files))
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise DataError("the file holds no video stream")
        stream = container.streams.video[0]
        # Empty packets (AVI's repeated-frame markers, end-of-stream) and packets the container
        # marks for discarding (MP4 edit lists) give no frame.
        pts = [p.pts for p in container.demux(stream) if p.size and not p.is_discard]
    if not pts:
        raise DataError("the video stream holds no frames")
    if any(value is None for value in pts):
        return ClipIndex(len(pts))
    ordered = np.sort(np.asarray(pts, dtype=np.int64))
    if np.any(np.diff(ordered) <= 0):  # repeated timestamps cannot number the frames
        return ClipIndex(len(pts))
    return ClipIndex(len(pts), ordered)


def read_clip(
    path: Path,
    index: ClipIndex,
    frames: Sequence[int],
    size: int,
    channels: int,
    crop: CropChooser | None = None,
) -> Tensor:
    """Frames `frames` (increasing frame numbers) of a clip as uint8 [C, T, size, size]: each
    frame to `channels`, cropped to a square (`crop`, else the centred largest one) and resized
    with Lanczos. Raises on undecodable data or missing frames; callers catch and count."""
    images = _read_images(path, index, frames)
    tensors = []
    for image in images:
        image = to_channels(image, channels)
        box = None if crop is None else crop(*image.size)
        tensors.append(square_resize(image, size, box))  # [C, size, size]
    return torch.stack(tensors, dim=1)  # [C, T, size, size]


def _read_images(path: Path, index: ClipIndex, frames: Sequence[int]) -> list[Image.Image]:
    if list(frames) != sorted(set(frames)) or frames[0] < 0 or frames[-1] >= index.num_frames:
        raise ValueError(f"frames must increase within [0, {index.num_frames}), got {frames}")
    if index.frame_files:
        images = []
        for number in frames:
            with Image.open(index.frame_files[number]) as opened:
                opened.load()
                images.append(opened.copy())
        return images
    if index.timestamps is None:
        return _decode_in_order(path, frames)
    wanted = [int(index.timestamps[number]) for number in frames]
    found = _decode_by_timestamp(path, wanted, seek=frames[0] > 0)
    if len(found) < len(wanted) and frames[0] > 0:  # the seek may have overshot: from the start
        found = _decode_by_timestamp(path, wanted, seek=False)
    missing = [number for number, pts in zip(frames, wanted, strict=True) if pts not in found]
    if missing:
        raise DataError(
            f"{len(missing)} of {len(frames)} wanted frames do not decode (e.g. frame "
            f"{missing[0]}): the file is damaged"
        )
    return [found[pts] for pts in wanted]


# Decoders emit frames in presentation order, but damaged or oddly muxed files can emit
# timestamps slightly out of order (OpenCV's Megamind_bugy.avi steps back by one): decoding
# stops only after this many frames past the last wanted one.
_REORDER_SLACK = 16


def _decode_by_timestamp(path: Path, wanted: list[int], seek: bool) -> dict[int, Image.Image]:
    """The decoded frames whose timestamps are in `wanted`, by timestamp."""
    targets, found, beyond = set(wanted), {}, 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1  # DataLoader workers parallelise across clips instead
        if seek:  # to the keyframe at or before the first wanted frame
            container.seek(wanted[0], stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            if frame.pts in targets:
                found[frame.pts] = frame.to_image()
                if len(found) == len(targets):
                    break
            elif frame.pts is not None and frame.pts > wanted[-1]:
                beyond += 1
                if beyond > _REORDER_SLACK:
                    break
    return found


def _decode_in_order(path: Path, frames: Sequence[int]) -> list[Image.Image]:
    targets, images = set(frames), []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        for number, frame in enumerate(container.decode(stream)):
            if number in targets:
                images.append(frame.to_image())
            if number >= frames[-1]:
                break
    if len(images) < len(frames):
        raise DataError(f"the video ends before frame {frames[-1]} (damaged or truncated)")
    return images
