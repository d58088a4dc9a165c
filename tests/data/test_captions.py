"""Caption templates for class-labelled datasets."""

from __future__ import annotations

import pytest
import torch

from unified_latents.data.captions import (
    HELDOUT_TEMPLATES,
    TRAIN_TEMPLATES,
    caption_table,
    captions_for_class,
    display_name,
    indefinite_article,
    random_captions,
)
from unified_latents.data.sources import FASHION_MNIST_CLASSES

FASHION_MNIST = list(FASHION_MNIST_CLASSES)  # the class names captions are built from


def test_templates_have_both_fields_and_are_distinct() -> None:
    for template in (*TRAIN_TEMPLATES, *HELDOUT_TEMPLATES):
        assert "{a} {name}" in template
    assert len(set(TRAIN_TEMPLATES)) == len(TRAIN_TEMPLATES) >= 6
    assert len(set(HELDOUT_TEMPLATES)) == len(HELDOUT_TEMPLATES) >= 3


def test_every_class_gets_every_template() -> None:
    for templates in (TRAIN_TEMPLATES, HELDOUT_TEMPLATES):
        table = caption_table(FASHION_MNIST, templates)
        assert len(table) == len(FASHION_MNIST)
        for class_name, row in zip(FASHION_MNIST, table, strict=True):
            assert len(row) == len(set(row)) == len(templates)
            assert all(display_name(class_name) in caption for caption in row)
            assert row == captions_for_class(class_name, templates)


def test_heldout_captions_never_occur_in_training() -> None:
    assert not set(TRAIN_TEMPLATES) & set(HELDOUT_TEMPLATES)
    train = {c for row in caption_table(FASHION_MNIST, TRAIN_TEMPLATES) for c in row}
    heldout = {c for row in caption_table(FASHION_MNIST, HELDOUT_TEMPLATES) for c in row}
    assert not train & heldout


def test_articles() -> None:
    assert captions_for_class("Ankle boot", ["a photo of {a} {name}."]) == [
        "a photo of an ankle boot."
    ]
    assert captions_for_class("Trouser", ["{a} {name}"]) == ["a pair of trousers"]
    assert captions_for_class("Coat", ["{a} {name}"]) == ["a coat"]
    for name, article in [
        ("apple", "an"),
        ("egg", "an"),
        ("igloo", "an"),
        ("owl", "an"),
        ("umbrella", "an"),
        ("hour", "an"),
        ("unicorn", "a"),
        ("one-piece swimsuit", "a"),
        ("handwritten digit eight", "a"),
        ("bag", "a"),
    ]:
        assert indefinite_article(name) == article, name


def test_display_names() -> None:
    assert [display_name(name) for name in FASHION_MNIST] == [
        "t-shirt",
        "pair of trousers",
        "pullover",
        "dress",
        "coat",
        "sandal",
        "shirt",
        "sneaker",
        "bag",
        "ankle boot",
    ]
    assert display_name("7") == display_name("seven") == display_name("7 - seven")
    assert display_name("7") == "handwritten digit seven"
    assert display_name("pickup_truck") == "pickup truck"  # fallback for unknown names


def test_random_captions_follow_labels_and_generator() -> None:
    labels = torch.tensor([0, 9, 1, 9, 3] * 20)
    table = caption_table(FASHION_MNIST, TRAIN_TEMPLATES)
    captions = random_captions(labels, FASHION_MNIST, torch.Generator().manual_seed(0))
    assert len(captions) == labels.numel()
    for label, caption in zip(labels.tolist(), captions, strict=True):
        assert caption in table[label]
    assert len(set(captions)) > len(set(labels.tolist()))  # templates vary, not one per class
    again = random_captions(labels, FASHION_MNIST, torch.Generator().manual_seed(0))
    assert captions == again


@pytest.mark.parametrize("templates", [TRAIN_TEMPLATES, HELDOUT_TEMPLATES])
def test_no_double_spaces_or_dangling_fields(templates: tuple[str, ...]) -> None:
    for row in caption_table(FASHION_MNIST + [str(d) for d in range(10)], templates):
        for caption in row:
            assert "  " not in caption and "{" not in caption and caption == caption.strip()
