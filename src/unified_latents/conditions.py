"""What the base model is conditioned on: nothing, a class label, a sentence embedding, or the
per-token features of a caption.

"text" trains on captions built from the class labels with the training templates
(`data/captions.py`); embeddings come from the offline all-MiniLM-L6-v2 encoder and are computed
once per (class, template). "text-tokens" trains on a dataset's own captions (`Captions`, e.g.
the emoji caption dataset): a batch then carries, instead of labels, int64 keys [B, 2] =
(dataset index, epoch), and `training` looks up `captions.caption(index, epoch)` (a fresh caption
per example per epoch) and encodes it to tokens (networks/text_tokens.py), caching the features of
recent captions. At sampling, any prompt can be encoded.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import Tensor

from unified_latents.data.captions import HELDOUT_TEMPLATES, TRAIN_TEMPLATES, caption_table
from unified_latents.data.containers import ImageDataset
from unified_latents.data.datasets import DataConfig, load_split
from unified_latents.networks.conditioning import ConditionConfig, null_condition
from unified_latents.networks.text_tokens import encode_tokens

MAX_CACHED_CAPTIONS = 8192  # token features of recent captions kept (≈ 20 KB each)


class Captions(Protocol):
    """A captioned dataset (`EmojiCaptions` is one)."""

    def __len__(self) -> int: ...

    def caption(self, index: int, epoch: int) -> str: ...

    def fixed_caption(self, index: int) -> str: ...


class ConditionError(ValueError):
    """A conditioning request that does not fit the model (e.g. --prompt on a class model)."""


class ConditionSource:
    def __init__(
        self,
        config: ConditionConfig,
        class_names: Sequence[str],
        captions: Captions | None = None,
        heldout_captions: Captions | None = None,
    ) -> None:
        """`captions`: the training split's; `heldout_captions`: those `evaluation` keys index
        (the held-out split's; the training split's if None)."""
        self.config = config
        self.class_names = list(class_names)
        self.captions = captions
        self.heldout_captions = heldout_captions or captions
        if config.kind != "none" and not self.class_names:
            raise ConditionError(f"{config.kind} conditioning needs a labelled dataset")
        self._encoder: Any = None  # loaded on first use (≈0.3 s, 90 MB)
        self._table: Tensor | None = None  # [classes, templates, dim] training captions
        self._tokens: OrderedDict[str, Tensor] = OrderedDict()  # caption → [real tokens, dim]

    @property
    def keyed_by_index(self) -> bool:
        """Whether batches carry (dataset index, epoch) keys instead of labels."""
        return self.kind == "text-tokens"

    def require_captions(self) -> Captions:
        if self.captions is None:
            raise ConditionError(
                "text-tokens conditioning trains on a captioned dataset: train the autoencoder "
                "(or the pixel baseline) on data.name=emoji-captions, e.g. --preset emoji"
            )
        return self.captions

    @property
    def kind(self) -> str:
        return self.config.kind

    def encoder(self):  # type: ignore[no-untyped-def]
        if self._encoder is None:
            from unified_latents.networks.text_encoder import SentenceEncoder

            self._encoder = SentenceEncoder.from_installed_package()
        return self._encoder

    def encode_prompts(self, prompts: Sequence[str]) -> Tensor:
        """Sentence embeddings [N, dim] ("text") or token features [N, L, dim] ("text-tokens")."""
        if not self.config.is_text:
            raise ConditionError(
                f"this model is {self.kind}-conditioned; --prompt needs a "
                "text-conditioned base model (e.g. --preset fashion-mnist-text or emoji-text)"
            )
        if self.kind == "text-tokens":
            return self._encode_tokens(prompts)
        return self.encoder().encode(list(prompts)).float()

    def _encode_tokens(self, prompts: Sequence[str]) -> Tensor:
        """Token features [N, text_tokens, text_dim] on the CPU; recent captions are cached."""
        missing = list(dict.fromkeys(p for p in prompts if p not in self._tokens))
        if missing:
            features, mask = encode_tokens(self.encoder(), missing, self.config.text_tokens)
            for prompt, row, real in zip(missing, features.cpu(), mask.cpu(), strict=True):
                self._tokens[prompt] = row[: int(real.sum())].clone()
        out = torch.zeros(len(prompts), self.config.text_tokens, self.config.text_dim)
        for i, prompt in enumerate(prompts):
            row = self._tokens[prompt]
            self._tokens.move_to_end(prompt)
            out[i, : row.shape[0]] = row
        while len(self._tokens) > MAX_CACHED_CAPTIONS:
            self._tokens.popitem(last=False)
        return out

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
        if self.kind == "text-tokens":
            captions = self.require_captions()
            keys = labels.tolist()  # [B, 2]: (dataset index, epoch)
            texts = [captions.caption(index, epoch) for index, epoch in keys]
            return self.encode_prompts(texts).to(labels.device)
        table = self.caption_embeddings()
        template = torch.randint(
            0, table.shape[1], labels.shape, generator=generator, device=generator.device
        )
        return table.to(labels.device)[labels, template.to(labels.device)]

    def evaluation(self, labels: Tensor) -> Tensor | None:
        """A deterministic condition for held-out ELBO estimates (first template for text; each
        example's fixed caption for text-tokens, `labels` being (index, epoch) keys)."""
        if self.kind == "text-tokens":
            self.require_captions()
            assert self.heldout_captions is not None
            fixed = self.heldout_captions.fixed_caption
            texts = [fixed(int(index)) for index in labels[:, 0].tolist()]
            return self.encode_prompts(texts).to(labels.device)
        if self.kind == "text":
            return self.caption_embeddings().to(labels.device)[labels, 0]
        return None if self.kind == "none" else labels

    def null(self, batch_size: int, device: torch.device) -> Tensor | None:
        return null_condition(self.config, batch_size, device)

    def for_classes(self, labels: Tensor) -> Tensor | None:
        """Sampling conditions for class indices (text: a held-out-template caption)."""
        if self.config.is_text:
            table = caption_table(self.class_names, HELDOUT_TEMPLATES)
            return self.encode_prompts([table[int(label)][0] for label in labels])
        return None if self.kind == "none" else labels

    def grid(self, per_class: int) -> tuple[Tensor | None, int]:
        """Conditions for a sample grid with one row per class; returns (cond, columns)."""
        classes = max(1, len(self.class_names))
        if self.kind == "text-tokens" and self.captions is not None:
            return self.encode_prompts(self.grid_prompts(classes, per_class)), per_class
        labels = torch.arange(classes).repeat_interleave(per_class)
        return self.for_classes(labels), per_class

    def grid_prompts(self, rows: int, per_row: int) -> list[str]:
        """Fixed captions of `rows` examples spread over the captioned dataset, each repeated."""
        captions = self.require_captions()
        picks = [i * len(captions) // rows for i in range(rows)]
        return [captions.fixed_caption(index) for index in picks for _ in range(per_row)]


def as_captions(dataset: ImageDataset) -> Captions:
    """`dataset` as a caption source, or a clear error if it has no captions."""
    if not all(hasattr(dataset, name) for name in ("caption", "fixed_caption")):
        raise ConditionError(
            "text-tokens conditioning needs a captioned dataset (data.name=emoji-captions); "
            "for captions built from class labels use condition.kind=text"
        )
    return dataset  # type: ignore[return-value]


def dataset_captions(data: DataConfig) -> tuple[Captions, Captions]:
    """The captions of the train and test splits of `data`, in the order `ul encode` uses."""
    return as_captions(load_split(data, "train")), as_captions(load_split(data, "test"))


def check_class_count(
    condition: ConditionConfig, class_names: Sequence[str], key: str = "model.condition"
) -> None:
    """A class-conditional model must have as many classes as the dataset has labels; `key` is
    where the condition sits in the run's config (for the message)."""
    if condition.kind == "class" and condition.num_classes != len(class_names):
        classes = len(class_names)
        raise ConditionError(
            f"the dataset has {classes} classes but {key}.num_classes is "
            f"{condition.num_classes}; pass --set {key}.num_classes={classes}"
        )
