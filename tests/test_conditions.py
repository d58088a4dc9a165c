"""conditions.py: what the base model is conditioned on, for training, held-out ELBOs,
sampling and CFG's null branch (text with a stand-in sentence encoder: no MiniLM here)."""

from __future__ import annotations

import pytest
import torch

from unified_latents.conditions import ConditionError, ConditionSource
from unified_latents.networks.conditioning import ConditionConfig

CLASSES = ["t-shirt", "trouser", "sneaker"]


class StandInEncoder:
    """Maps each caption to a fixed pseudo-random vector (a hash of the text), like a sentence
    encoder would: equal texts, equal vectors."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.seen: list[str] = []

    def encode(self, texts: list[str]) -> torch.Tensor:
        self.seen += texts
        rows = []
        for text in texts:
            seed = sum(ord(c) * (i + 1) for i, c in enumerate(text)) % (2**31)
            rows.append(torch.randn(self.dim, generator=torch.Generator().manual_seed(seed)))
        return torch.stack(rows)


def text_source() -> tuple[ConditionSource, StandInEncoder]:
    config = ConditionConfig(kind="text")
    source = ConditionSource(config, CLASSES)
    encoder = StandInEncoder(config.text_dim)
    source._encoder = encoder
    return source, encoder


def test_class_conditions_are_the_labels_and_null_is_the_extra_class() -> None:
    source = ConditionSource(ConditionConfig(kind="class", num_classes=3), CLASSES)
    labels = torch.tensor([2, 0, 1])
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(source.training(labels, generator), labels)  # type: ignore[arg-type]
    assert torch.equal(source.evaluation(labels), labels)  # type: ignore[arg-type]
    assert source.null(2, torch.device("cpu")).tolist() == [3, 3]  # type: ignore[union-attr]
    cond, columns = source.grid(per_class=2)
    assert columns == 2 and cond is not None and cond.tolist() == [0, 0, 1, 1, 2, 2]


def test_unconditional_has_no_condition_and_refuses_prompts() -> None:
    source = ConditionSource(ConditionConfig(kind="none"), [])
    assert source.training(torch.tensor([0]), torch.Generator()) is None
    assert source.null(3, torch.device("cpu")) is None
    with pytest.raises(ConditionError, match="text-conditioned"):
        source.encode_prompts(["a boot"])


def test_text_training_draws_a_template_per_example_and_evaluation_is_fixed() -> None:
    source, _ = text_source()
    labels = torch.tensor([0, 0, 0, 0, 0, 0, 0, 0, 1])
    drawn = source.training(labels, torch.Generator().manual_seed(0))
    assert drawn is not None and drawn.shape == (9, source.config.text_dim)
    table = source.caption_embeddings()  # [classes, templates, dim]
    for row, label in zip(drawn, labels, strict=True):  # each row is one of its class's captions
        assert any(torch.equal(row, caption) for caption in table[label])
    assert len({tuple(row.tolist()) for row in drawn[:8]}) > 1  # templates vary per example
    fixed = source.evaluation(labels)
    assert fixed is not None and torch.equal(fixed[0], table[0, 0])
    assert torch.equal(source.null(2, torch.device("cpu")), torch.zeros(2, 384))  # type: ignore[arg-type]


def test_text_sampling_uses_held_out_templates() -> None:
    source, encoder = text_source()
    train_captions = set()
    source.caption_embeddings()
    train_captions.update(encoder.seen)
    encoder.seen.clear()
    source.for_classes(torch.tensor([1]))
    assert encoder.seen and encoder.seen[0] not in train_captions
    assert CLASSES[1] in encoder.seen[0]


def test_a_labelled_condition_needs_class_names() -> None:
    with pytest.raises(ConditionError, match="labelled dataset"):
        ConditionSource(ConditionConfig(kind="class", num_classes=3), [])
