"""The sample grid of a generator's evaluation: a filmstrip picture for clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tests.helpers import random_uint8
from unified_latents.conditions import ConditionSource
from unified_latents.evaluation.samples import sample_grid, samples_evaluation
from unified_latents.networks.conditioning import ConditionConfig
from unified_latents.visualize_video import filmstrip, save_pictures


def test_the_sample_grid_of_clips_is_a_filmstrip(tmp_path: Path) -> None:
    """Clips [N, C, T, H, W] (as a video base model draws them): the first 8, one row each, saved
    as `ul evaluate` saves the grid (`save_pictures`): a PNG filmstrip of 8 rows × T frames."""
    clips = random_uint8((10, 1, 4, 8, 8), seed=1)
    conditions = ConditionSource(ConditionConfig(kind="none"), [])
    grid, columns = sample_grid(clips, conditions)
    assert torch.equal(grid, clips[:8]) and columns == 1

    scores: tuple[dict[str, float], dict[str, str], dict[str, float]] = ({}, {}, {})
    evaluation = samples_evaluation(clips, torch.full((10,), -1), conditions, scores, dict)
    assert torch.equal(evaluation.grid, clips[:8]) and evaluation.grid_columns == 1
    path = save_pictures(evaluation.grid, tmp_path / "samples.png", evaluation.grid_columns)
    picture = np.asarray(Image.open(path).convert("RGB"))
    cell = 8 + 2 * 2  # a frame and its 2-pixel border, enlarged 2×
    assert picture.shape == (8 * cell * 2, 4 * cell * 2, 3)
    assert np.array_equal(picture[::2, ::2], filmstrip(clips[:8]))
    assert (tmp_path / "samples.gif").exists()


def test_the_sample_grid_of_images_has_a_column_per_class() -> None:
    images = random_uint8((120, 1, 8, 8))
    conditions = ConditionSource(ConditionConfig(kind="class", num_classes=3), ["a", "b", "c"])
    grid, columns = sample_grid(images, conditions)
    assert columns == 3 and torch.equal(grid, images[:30])
