"""The alignment metric trained in this project: retrieval arithmetic, a tiny training run on a
synthetic fixture (solid-colour images, one caption per colour; no emoji install, no MiniLM),
and the save → load round trip."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from torch import Tensor

from unified_latents.metrics.alignment import (
    AlignmentMetric,
    alignment_scores,
    build_alignment_metric,
    classifier_accuracy,
    classify_images,
    image_embeddings,
    load_alignment_metric,
    retrieval_scores,
    save_alignment_metric,
    text_embeddings,
)
from unified_latents.metrics.alignment_networks import AlignmentConfig
from unified_latents.metrics.alignment_training import (
    AlignmentTrainingConfig,
    contrastive_loss,
    random_shift,
    train_classifier,
    train_contrastive,
)

TEXT_DIM = 16
COLOURS = {"red": (230, 20, 20), "green": (20, 200, 40), "blue": (30, 30, 220), "black": (0, 0, 0)}
CAPTIONS = [f"a {name} square" for name in COLOURS]
CONFIG = AlignmentConfig(
    image_size=8,
    widths=(8, 16),
    feature_dim=16,
    embed_dim=8,
    text_dim=TEXT_DIM,
    num_categories=2,
    num_subcategories=len(COLOURS),
)


class HashTextEncoder:
    """A stand-in for MiniLM: a fixed random unit vector per distinct text."""

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Tensor:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big")
            rows.append(torch.randn(TEXT_DIM, generator=torch.Generator().manual_seed(seed)))
        return torch.nn.functional.normalize(torch.stack(rows), dim=-1)


def colour_images(per_colour: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """uint8 [4·per_colour, 3, 8, 8] solid colours with ±10 noise, and their colour index."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(len(COLOURS)).repeat_interleave(per_colour)
    rgb = torch.tensor(list(COLOURS.values()), dtype=torch.float32)[labels]  # [N, 3]
    noise = torch.randint(-10, 11, (len(labels), 3, 8, 8), generator=generator)
    return (rgb[:, :, None, None] + noise).clamp(0, 255).to(torch.uint8), labels


def trained_metric() -> AlignmentMetric:
    torch.manual_seed(0)
    names = [f"category {i}" for i in range(2)]
    metric = build_alignment_metric(CONFIG, HashTextEncoder(), names, list(COLOURS))
    images, labels = colour_images(per_colour=8)
    sentences = HashTextEncoder().encode(CAPTIONS)[labels][:, None]  # [N, V=1, TEXT_DIM]
    training = AlignmentTrainingConfig(steps=60, batch_size=16, lr=1e-2, warmup_steps=5)
    losses = train_contrastive(metric.contrastive, images, sentences, labels, training)
    assert len(losses) == 60 and all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-5:]) < sum(losses[:5])
    train_classifier(metric.classifier, images, labels // 2, labels, training)
    return metric.eval()


@pytest.fixture(scope="module")
def metric() -> AlignmentMetric:
    return trained_metric()


def test_perfect_retrieval_and_chance() -> None:
    similarity = torch.eye(7)  # image i matches caption i only
    scores = retrieval_scores(similarity, torch.arange(7))
    assert (scores.r1, scores.r5, scores.median_rank) == (1.0, 1.0, 1.0)
    assert scores.r1_chance == pytest.approx(1 / 7) and scores.r5_chance == pytest.approx(5 / 7)
    few = retrieval_scores(torch.eye(3), torch.arange(3))
    assert few.r5_chance == 1.0  # k ≥ candidates: every caption is in the top k


def test_ties_score_exactly_chance_and_ranks_count() -> None:
    constant = retrieval_scores(torch.zeros(4, 10), torch.tensor([0, 3, 7, 9]))
    assert constant.r1 == pytest.approx(constant.r1_chance) == pytest.approx(0.1)
    assert constant.r5 == pytest.approx(constant.r5_chance) == pytest.approx(0.5)
    second = torch.tensor([[0.9, 1.0, 0.1]])  # the right caption (0) ranks second
    scores = retrieval_scores(second, torch.tensor([0]))
    assert (scores.r1, scores.r5, scores.median_rank) == (0.0, 1.0, 2.0)
    with pytest.raises(ValueError, match="targets"):
        retrieval_scores(second, torch.tensor([3]))


def test_contrastive_loss_counts_same_emoji_as_positives() -> None:
    embeddings = torch.nn.functional.normalize(torch.randn(6, 4), dim=-1)
    scale = torch.tensor(1.0)
    distinct = contrastive_loss(embeddings, embeddings, scale, torch.arange(6))
    assert distinct > 0
    # Two copies of one emoji, each with the same caption: with shared positives, swapping
    # which text belongs to which copy changes nothing.
    doubled = torch.cat([embeddings[:3], embeddings[:3]])
    groups = torch.tensor([0, 1, 2, 0, 1, 2])
    swapped = doubled[[3, 4, 5, 0, 1, 2]]
    assert torch.allclose(
        contrastive_loss(doubled, doubled, scale, groups),
        contrastive_loss(doubled, swapped, scale, groups),
    )


def test_random_shift_keeps_shape_and_fills_white() -> None:
    images = torch.zeros(5, 3, 8, 8, dtype=torch.uint8)
    generator = torch.Generator().manual_seed(0)
    shifted = random_shift(images, 2, generator)
    assert shifted.shape == images.shape and shifted.dtype == torch.uint8
    assert set(shifted.unique().tolist()) <= {0, 255}
    assert torch.equal(random_shift(images, 0, generator), images)


def test_trained_metric_shapes_and_separable_retrieval(metric: AlignmentMetric) -> None:
    images, labels = colour_images(per_colour=3, seed=1)  # new draws of the noise
    assert image_embeddings(metric, images).shape == (12, CONFIG.embed_dim)
    captions = text_embeddings(metric, CAPTIONS)
    assert captions.shape == (4, CONFIG.embed_dim)
    assert torch.allclose(captions.norm(dim=-1), torch.ones(4), atol=1e-5)
    scores = alignment_scores(metric, images, labels.tolist(), CAPTIONS)
    assert scores.num_images == 12 and scores.num_candidates == 4
    assert scores.r1 == 1.0 and scores.r5 == 1.0
    assert scores.r1_chance == 0.25 and scores.r5_chance == 1.0
    accuracy = classifier_accuracy(metric, images, labels // 2, labels)
    assert accuracy.num_images == 12 and accuracy.category_chance == 0.5
    assert accuracy.subcategory_accuracy == 1.0


def test_inputs_are_checked(metric: AlignmentMetric) -> None:
    images, labels = colour_images(per_colour=1)
    with pytest.raises(ValueError, match="uint8 RGB"):
        alignment_scores(metric, images.float(), labels, CAPTIONS)
    with pytest.raises(ValueError, match="uint8 RGB"):
        image_embeddings(metric, torch.zeros(2, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(ValueError, match="distinct"):
        alignment_scores(metric, images, labels, [*CAPTIONS[:3], CAPTIONS[0]])
    with pytest.raises(ValueError, match="one prompt index per image"):
        alignment_scores(metric, images, labels[:2], CAPTIONS)


def test_save_load_round_trip(metric: AlignmentMetric, tmp_path: Path) -> None:
    metric.card = {"seed": 0, "note": "test"}
    save_alignment_metric(metric, tmp_path / "metric")
    loaded = load_alignment_metric(tmp_path / "metric", text_encoder=HashTextEncoder())
    assert loaded.config == metric.config and loaded.card == metric.card
    assert loaded.subcategory_names == tuple(COLOURS)
    images, _ = colour_images(per_colour=2, seed=2)
    assert torch.equal(image_embeddings(loaded, images), image_embeddings(metric, images))
    assert torch.equal(text_embeddings(loaded, CAPTIONS), text_embeddings(metric, CAPTIONS))
    for before, after in zip(
        classify_images(metric, images), classify_images(loaded, images), strict=True
    ):
        assert torch.equal(before, after)
    with pytest.raises(FileNotFoundError, match="train_alignment"):
        load_alignment_metric(tmp_path / "missing", text_encoder=HashTextEncoder())
