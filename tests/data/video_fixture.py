"""Tiny synthetic videos and frame folders for the video tests, written with PyAV and PIL.

Frame k of every clip is uniform in brightness `level(k)`, so a decoded clip tells which source
frames it holds even after lossy coding; frame folders (lossless PNG) also carry the column
number in the red channel, so spatial crops can be read off exactly.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image

LEVEL_STEP = 6  # brightness step between frames: well above H.264/MPEG-4 coding error


def level(frame: int) -> int:
    return 10 + LEVEL_STEP * frame


def frame_numbers_of(clip: np.ndarray) -> list[int]:
    """Source frame numbers of a decoded clip uint8 [C, T, H, W] (inverse of `level`)."""
    means = clip.astype(np.float64).mean(axis=(0, 2, 3))
    return [round((mean - 10) / LEVEL_STEP) for mean in means]


def write_video(
    path: Path, num_frames: int, width: int = 48, height: int = 32, codec: str = "libx264"
) -> Path:
    """A video of uniform frames (brightness `level(k)`); libx264 uses B-frames and a keyframe
    every 8 frames, so reads exercise reordering and seeking."""
    if num_frames > (255 - 10) // LEVEL_STEP + 1:
        raise ValueError("too many frames for distinct brightness levels")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=10)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.gop_size = 8
        stream.bit_rate = 4_000_000  # near-lossless: levels survive coding within ±2
        if codec == "libx264":
            stream.options = {"bf": "2", "crf": "10"}
        for number in range(num_frames):
            array = np.full((height, width, 3), level(number), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_frame_folder(directory: Path, num_frames: int, width: int = 48, height: int = 32) -> Path:
    """PNG frames named frame_1.png … frame_N.png (natural order differs from name order once
    N ≥ 10); red = 4 × column, green = `level(k)`, blue = row."""
    directory.mkdir(parents=True, exist_ok=True)
    columns = np.broadcast_to(4 * np.arange(width, dtype=np.uint8)[None, :], (height, width))
    rows = np.broadcast_to(np.arange(height, dtype=np.uint8)[:, None], (height, width))
    for number in range(num_frames):
        green = np.full((height, width), level(number), dtype=np.uint8)
        array = np.stack([columns, green, rows], axis=-1)
        Image.fromarray(array, mode="RGB").save(directory / f"frame_{number + 1}.png")
    return directory
