"""What the base model is conditioned on: nothing, a class label, or a sentence embedding.

Text conditioning trains on captions built from the class labels with the training templates
(`data/captions.py`); embeddings come from the offline all-MiniLM-L6-v2 encoder and are computed
once per (class, template). At sampling, any prompt can be encoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from unified_latents.data.captions import HELDOUT_TEMPLATES, TRAIN_TEMPLATES, caption_table
from unified_latents.networks.conditioning import ConditionConfig, null_condition


class ConditionError(ValueError):
    """A conditioning request that does not fit the model (e.g. --prompt on a class model)."""


class ConditionSource:
    def __init__(self, config: ConditionConfig, class_names: Sequence[str]) -> None:
        self.config = config
        self.class_names = list(class_names)
        if config.kind != "none" and not self.class_names:
            raise ConditionError(f"{config.kind} conditioning needs a labelled dataset")
        self._encoder: Any = None  # loaded on first use (≈0.3 s, 90 MB)
        self._table: Tensor | None = None  # [classes, templates, dim] training captions

    @property
    def kind(self) -> str:
        return self.config.kind

    def encoder(self):  # type: ignore[no-untyped-def]
        if self._encoder is None:
            from unified_latents.networks.text_encoder import SentenceEncoder

            self._encoder = SentenceEncoder.from_installed_package()
        return self._encoder

    def encode_prompts(self, prompts: Sequence[str]) -> Tensor:
        if self.kind != "text":
            raise ConditionError(
                f"this model is {self.kind}-conditioned; --prompt needs a "
                "text-conditioned base model (e.g. --preset fashion-mnist-text)"
            )
        return self.encoder().encode(list(prompts)).float()

    def caption_embeddings(self) -> Tensor:
        if self._table is None:
            table = caption_table(self.class_names, TRAIN_TEMPLATES)
            flat = self.encode_prompts([caption for row in table for caption in row])
            self._table = flat.reshape(len(table), len(table[0]), -1)
        return self._table

    def training(self, labels: Tensor, generator: torch.Generator) -> Tensor | None:
        """The condition of a training batch (label dropout happens in the objective)."""
        if self.kind == "none":
            return None
        if self.kind == "class":
            return labels
        table = self.caption_embeddings()
        template = torch.randint(
            0, table.shape[1], labels.shape, generator=generator, device=generator.device
        )
        return table.to(labels.device)[labels, template.to(labels.device)]

    def evaluation(self, labels: Tensor) -> Tensor | None:
        """A deterministic condition for held-out ELBO estimates (first template for text)."""
        if self.kind == "text":
            return self.caption_embeddings().to(labels.device)[labels, 0]
        return None if self.kind == "none" else labels

    def null(self, batch_size: int, device: torch.device) -> Tensor | None:
        return null_condition(self.config, batch_size, device)

    def for_classes(self, labels: Tensor) -> Tensor | None:
        """Sampling conditions for class indices (text: a held-out-template caption)."""
        if self.kind == "text":
            table = caption_table(self.class_names, HELDOUT_TEMPLATES)
            return self.encode_prompts([table[int(label)][0] for label in labels])
        return None if self.kind == "none" else labels

    def grid(self, per_class: int) -> tuple[Tensor | None, int]:
        """Conditions for a sample grid with one row per class; returns (cond, columns)."""
        classes = max(1, len(self.class_names))
        labels = torch.arange(classes).repeat_interleave(per_class)
        return self.for_classes(labels), per_class
