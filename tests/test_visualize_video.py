"""Video pictures decode back to the frames and sizes written: GIF and MP4 grids, filmstrips."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

from unified_latents.visualize_video import (
    BORDER_GREY,
    CONTEXT_COLOUR,
    filmstrip,
    grid_frames,
    save_clips_gif,
    save_clips_mp4,
    save_filmstrip,
)


def moving_clips(count: int, channels: int, num_frames: int, size: int = 12) -> torch.Tensor:
    """uint8 [N, C, T, S, S]: a bright column that moves one pixel a frame (no two frames equal,
    so no GIF frame is merged), on a background that differs between clips."""
    clips = torch.zeros(count, channels, num_frames, size, size, dtype=torch.uint8)
    for clip in range(count):
        clips[clip] = 20 * clip
        for time in range(num_frames):
            clips[clip, :, time, :, time % size] = 250
    return clips


@pytest.mark.parametrize("channels", [1, 3])
def test_gif_has_every_frame_at_the_grid_size(tmp_path: Path, channels: int) -> None:
    clips = moving_clips(5, channels, 7)  # 5 clips → a 3 × 2 grid of 12-pixel cells
    path = save_clips_gif(clips, tmp_path / "clips.gif", fps=10, scale=2)
    with Image.open(path) as gif:
        frames = [frame.convert("RGB") for frame in ImageSequence.Iterator(gif)]
        assert gif.info["duration"] == 100 and gif.info["loop"] == 0
    width, height = 2 * (3 * 14 + 2), 2 * (2 * 14 + 2)
    assert len(frames) == 7 and all(frame.size == (width, height) for frame in frames)
    expected = grid_frames(clips, scale=2)  # [T, H, W, C]
    assert expected.shape == (7, height, width, channels)
    decoded = np.asarray(frames[3])[..., :channels]
    assert np.abs(decoded.astype(int) - expected[3].astype(int)).max() <= 8  # palette rounding


def test_mp4_decodes_to_the_frames_written(tmp_path: Path) -> None:
    clips = moving_clips(2, 3, 9, size=15)  # a 2 × 1 grid: 2·17+2 = 36 wide, 17+2 = 19 high
    path = save_clips_mp4(clips, tmp_path / "clips.mp4", fps=5)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        assert stream.average_rate == 5
    assert len(frames) == 9 and frames[0].shape == (20, 36, 3)  # odd height padded to even
    expected = grid_frames(clips)[4].astype(float)
    assert np.abs(frames[4][:19].astype(float) - expected).mean() < 4  # lossy, visually exact


def test_filmstrip_rows_columns_and_context_border(tmp_path: Path) -> None:
    clips = moving_clips(3, 1, 6)
    strip = filmstrip(clips, context_frames=2, padding=2)
    cell = 12 + 4
    assert strip.shape == (3 * cell, 6 * cell + 4, 3)  # a 4-pixel gap after the context
    assert tuple(strip[0, 0]) == CONTEXT_COLOUR and tuple(strip[cell, cell]) == CONTEXT_COLOUR
    assert tuple(strip[0, 2 * cell + 4]) == (BORDER_GREY,) * 3  # first generated frame
    # Clip 1, frame 3 sits in row 1, column 3 (after the gap): its moving column is at x = 3.
    top, left = cell + 2, 3 * cell + 4 + 2
    assert (strip[top : top + 12, left + 3] == 250).all()
    assert (strip[top : top + 12, left] == 20).all()
    path = save_filmstrip(clips, tmp_path / "strip.png", context_frames=2, scale=3)
    with Image.open(path) as picture:
        assert picture.size == (3 * strip.shape[1], 3 * strip.shape[0])
    assert filmstrip(clips).shape == (3 * cell, 6 * cell, 3)  # no context: no gap


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="uint8"):
        grid_frames(torch.zeros(1, 3, 2, 4, 4))
    with pytest.raises(ValueError, match="context_frames"):
        filmstrip(moving_clips(1, 3, 4), context_frames=5)
