"""Alignment of text-to-image samples in `ul evaluate` (evaluation/alignment.py): targets are the
held-out images' emoji names (sample i for caption i mod K), the real images give the ceiling,
and a missing metric is a note, not an error. Uses the solid-colour metric of
tests/metrics/test_alignment.py (no emoji install, no MiniLM)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.metrics.test_alignment import CAPTIONS, colour_images, trained_metric
from unified_latents.evaluation import alignment


class ColourCaptions:
    """Held-out "images" 0..3, one per colour, named by their caption."""

    def __len__(self) -> int:
        return len(CAPTIONS)

    def caption(self, index: int, epoch: int) -> str:
        return CAPTIONS[index]

    def fixed_caption(self, index: int) -> str:
        return CAPTIONS[index]

    def concept(self, index: int) -> str:
        return CAPTIONS[index]


def test_samples_are_scored_against_the_names_of_their_prompts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metric = trained_metric()
    monkeypatch.setattr(alignment, "load_alignment_metric", lambda *a, **k: metric)
    real, _ = colour_images(per_colour=1, seed=3)  # image i is colour i
    samples = torch.cat([real, real])  # sample i was asked for caption i mod 4: right colours
    metrics, notes = alignment.alignment_metrics(
        samples, real, ColourCaptions(), torch.device("cpu")
    )
    assert metrics["r1"] == 1.0 and metrics["r1_real"] == 1.0
    assert metrics["r1_chance"] == pytest.approx(0.25)
    assert "8 samples among the 4 emoji names" in notes["r1"] and "not CLIP" in notes["r1"]
    wrong = torch.roll(samples, 1, dims=0)  # every sample shows another prompt's colour
    assert (
        alignment.alignment_metrics(wrong, real, ColourCaptions(), torch.device("cpu"))[0]["r1"]
        == 0.0
    )


def test_without_names_or_weights_nothing_is_measured(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    images, _ = colour_images(per_colour=1)

    class Unnamed:
        def __len__(self) -> int:
            return 4

    assert alignment.alignment_metrics(images, images, Unnamed(), torch.device("cpu")) == ({}, {})  # type: ignore[arg-type]
    monkeypatch.setattr(alignment, "default_metric_dir", lambda size: tmp_path / "none")
    metrics, notes = alignment.alignment_metrics(
        images, images, ColourCaptions(), torch.device("cpu")
    )
    assert metrics == {} and "not measured" in notes["r1"]
