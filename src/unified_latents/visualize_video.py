"""Pictures of video clips for humans: an animated grid (GIF, or MP4 via PyAV) and a PNG
filmstrip (a row per clip, a column per frame) that can mark the context frames a frame
predictor was given. A module apart from `visualize.py` (image grids and metric plots), whose
`image_grid` lays out each frame of the animations.

Clips are uint8 [N, C, T, H, W] with C = 1 or 3, as `data.video_files` yields them.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image
from torch import Tensor

from unified_latents.visualize import image_grid, interleave, save_image_grid, save_picture

CONTEXT_COLOUR = (40, 120, 230)  # border of context frames in filmstrips
BORDER_GREY = 128  # border of every other cell, as in `visualize.image_grid`


def _check_clips(clips: Tensor) -> None:
    if clips.dtype != torch.uint8 or clips.dim() != 5 or clips.shape[1] not in (1, 3):
        raise ValueError(
            f"clips must be uint8 [N, C, T, H, W] with C = 1 or 3, got {clips.dtype} "
            f"{tuple(clips.shape)}"
        )


def grid_frames(clips: Tensor, num_columns: int | None = None, scale: int = 1) -> np.ndarray:
    """uint8 [N, C, T, H, W] → T grid images uint8 [T, rows·(H+2)+2, cols·(W+2)+2, C] (each
    clip in its own cell, frame by frame), enlarged `scale` times (nearest neighbour)."""
    _check_clips(clips)
    frames = [image_grid(clips[:, :, time], num_columns) for time in range(clips.shape[2])]
    stacked = np.stack(frames)  # [T, H', W', C]
    return stacked.repeat(scale, axis=1).repeat(scale, axis=2) if scale > 1 else stacked


def save_clips_gif(
    clips: Tensor, path: Path, num_columns: int | None = None, fps: float = 8.0, scale: int = 1
) -> Path:
    """An animated GIF of the clips in a grid, looping forever at `fps` frames a second.
    (Pillow merges consecutive identical frames into one longer frame; timing is kept.)"""
    frames = grid_frames(clips, num_columns, scale)
    pictures = [
        Image.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame) for frame in frames
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    # GIF timing is in hundredths of a second: round to the nearest 10 ms.
    duration_ms = 10 * max(2, round(100 / fps))
    pictures[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=pictures[1:],
        duration=duration_ms,
        loop=0,
        optimize=False,
        disposal=1,
    )
    return path


def save_clips_mp4(
    clips: Tensor, path: Path, num_columns: int | None = None, fps: int = 8, scale: int = 1
) -> Path:
    """An MP4 (H.264, yuv420p, playable in browsers) of the clips in a grid; odd sizes are
    padded with grey by one pixel, as yuv420p needs even width and height."""
    frames = grid_frames(clips, num_columns, scale)
    if frames.shape[-1] == 1:
        frames = frames.repeat(3, axis=-1)
    height, width = frames.shape[1:3]
    padded = np.full((frames.shape[0], height + height % 2, width + width % 2, 3), BORDER_GREY)
    padded[:, :height, :width] = frames
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = padded.shape[2], padded.shape[1]
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "18"}  # visually lossless for small pictures
        for frame in padded.astype(np.uint8):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():  # flush the encoder
            container.mux(packet)
    return path


def filmstrip(clips: Tensor, context_frames: int = 0, padding: int = 2) -> np.ndarray:
    """uint8 [N, C, T, H, W] → one RGB picture uint8 [N·(H+2p)+…, T·(W+2p)+…, 3]: row n is clip
    n, column t frame t. The first `context_frames` frames get a coloured border and a wider
    gap after them, so context and generated frames are told apart at a glance."""
    _check_clips(clips)
    count, channels, num_frames, height, width = clips.shape
    if not 0 <= context_frames <= num_frames:
        raise ValueError(f"context_frames must be in [0, {num_frames}], got {context_frames}")
    gap = 2 * padding if 0 < context_frames < num_frames else 0  # after the context columns
    cell_height, cell_width = height + 2 * padding, width + 2 * padding
    strip = np.full((count * cell_height, num_frames * cell_width + gap, 3), 255, dtype=np.uint8)
    array = clips.permute(0, 2, 3, 4, 1).cpu().numpy()  # [N, T, H, W, C]
    if channels == 1:
        array = array.repeat(3, axis=-1)
    for row in range(count):
        for time in range(num_frames):
            top = row * cell_height
            left = time * cell_width + (gap if time >= context_frames else 0)
            colour = CONTEXT_COLOUR if time < context_frames else (BORDER_GREY,) * 3
            strip[top : top + cell_height, left : left + cell_width] = colour
            inner_top, inner_left = top + padding, left + padding
            strip[inner_top : inner_top + height, inner_left : inner_left + width] = array[
                row, time
            ]
    return strip


def save_filmstrip(
    clips: Tensor, path: Path, context_frames: int = 0, scale: int = 1, padding: int = 2
) -> Path:
    """Write `filmstrip(clips, context_frames)` as a PNG, enlarged `scale` times."""
    return save_picture(filmstrip(clips, context_frames, padding), path, scale)


def save_pictures(
    pictures: Tensor, path: Path, num_columns: int, scale: int = 2, context_frames: int = 0
) -> Path:
    """uint8 images [N, C, H, W] as a PNG grid of `num_columns`; clips [N, C, T, H, W] as a PNG
    filmstrip (a row per clip, the first `context_frames` marked) and an animated GIF beside it
    (`path` with suffix .gif)."""
    if pictures.dim() == 4:
        return save_image_grid(pictures, path, num_columns, scale)
    save_clips_gif(pictures, path.with_suffix(".gif"), num_columns=2, scale=scale)
    return save_filmstrip(pictures, path, context_frames, scale=scale)


def save_comparison(originals: Tensor, reconstructions: Tensor, path: Path, scale: int = 2) -> Path:
    """Originals next to their reconstructions (uint8, same shape) as `save_pictures` does: for
    images 8-column rows alternating originals / reconstructions (64 of each at most); for clips
    a filmstrip whose rows alternate clip / reconstruction (8 pairs)."""
    if originals.dim() == 4:
        return save_pictures(interleave(originals[:64], reconstructions[:64]), path, 8, scale)
    pairs = interleave(originals[:8], reconstructions[:8], num_columns=1)
    return save_pictures(pairs, path, 1, scale)
