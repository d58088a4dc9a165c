"""A text–image alignment metric trained in this project (not CLIP, and not a "CLIP score").

No CLIP weights are available offline, so `benchmarks/train_alignment.py` trains a small
contrastive image–text model here (`alignment_networks.ContrastiveModel`: a CNN from scratch and
a learned linear projection of the frozen MiniLM sentence embedding, symmetric InfoNCE with a
learned temperature) and a category/subcategory classifier, both on the emoji caption dataset's
*training split only*. Its numbers are comparable only between runs that use the same weights
(`AlignmentMetric.card` records where they came from).

- `alignment_scores(metric, images, prompt_indices, candidate_captions)`: image i was made from
  (or shows) `candidate_captions[prompt_indices[i]]`; retrieval ranks every candidate caption by
  cosine similarity to the image and reports R@1 and R@5 with their chance levels (k / number of
  candidates). Ties are split fairly: a target tied with t others counts as the expected hit
  rate under a random tie-break, so a constant model scores exactly chance.
  The scores themselves are `metrics/retrieval.py`'s.
- `classifier_accuracy(metric, images, categories, subcategories)`: top-1 accuracies.
- `save_alignment_metric` / `load_alignment_metric`: safetensors weights + a JSON card.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from unified_latents.data.datasets import to_model_range
from unified_latents.metrics.alignment_networks import (
    AlignmentConfig,
    ContrastiveModel,
    EmojiClassifier,
)
from unified_latents.metrics.retrieval import RetrievalScores, retrieval_scores

WEIGHTS_FILE = "alignment.safetensors"
CARD_FILE = "alignment.json"
METRIC_LABEL = "text–image alignment metric trained in this project (not CLIP)"


class TextEmbedder(Protocol):
    """What the metric needs of a text encoder (`networks.text_encoder.SentenceEncoder`)."""

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Tensor: ...  # [N, dim]


@dataclass
class AlignmentMetric:
    """The trained contrastive model and classifier, the frozen text encoder and the labels."""

    config: AlignmentConfig
    contrastive: ContrastiveModel
    classifier: EmojiClassifier
    text_encoder: TextEmbedder
    category_names: tuple[str, ...]
    subcategory_names: tuple[str, ...]
    card: dict[str, Any] = field(default_factory=dict)  # provenance, written beside the weights

    def eval(self) -> AlignmentMetric:
        self.contrastive.eval()
        self.classifier.eval()
        return self


@dataclass(frozen=True)
class ClassifierScores:
    num_images: int
    category_accuracy: float
    subcategory_accuracy: float
    category_chance: float  # 1 / number of categories
    subcategory_chance: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def build_alignment_metric(
    config: AlignmentConfig,
    text_encoder: TextEmbedder,
    category_names: Sequence[str],
    subcategory_names: Sequence[str],
) -> AlignmentMetric:
    """Freshly initialised networks (seed torch first for reproducibility)."""
    if (len(category_names), len(subcategory_names)) != (
        config.num_categories,
        config.num_subcategories,
    ):
        raise ValueError("category/subcategory names do not match the config's head sizes")
    return AlignmentMetric(
        config=config,
        contrastive=ContrastiveModel(config),
        classifier=EmojiClassifier(config),
        text_encoder=text_encoder,
        category_names=tuple(category_names),
        subcategory_names=tuple(subcategory_names),
    )


def checked_images(images_uint8: Tensor, image_size: int) -> Tensor:
    """`images_uint8` if it is uint8 [N, 3, image_size, image_size], else a clear error."""
    shape = (3, image_size, image_size)
    if (
        images_uint8.dtype != torch.uint8
        or images_uint8.dim() != 4
        or images_uint8.shape[1:] != shape
    ):
        raise ValueError(
            f"the alignment metric takes uint8 RGB images [N, {', '.join(map(str, shape))}] "
            f"(its training size), got {images_uint8.dtype} {tuple(images_uint8.shape)}"
        )
    return images_uint8


@torch.inference_mode()
def image_embeddings(
    metric: AlignmentMetric, images_uint8: Tensor, batch_size: int = 256
) -> Tensor:
    """Unit-norm image embeddings [N, embed_dim] (float32, CPU)."""
    images = checked_images(images_uint8, metric.config.image_size)
    model = metric.contrastive.eval()
    device = model.logit_scale.device
    parts = [
        model.embed_images(to_model_range(images[start : start + batch_size].to(device))).cpu()
        for start in range(0, len(images), batch_size)
    ]
    return torch.cat(parts) if parts else torch.zeros(0, metric.config.embed_dim)


@torch.inference_mode()
def text_embeddings(metric: AlignmentMetric, captions: Sequence[str]) -> Tensor:
    """Unit-norm caption embeddings [C, embed_dim] (float32, CPU)."""
    model = metric.contrastive.eval()
    sentences = metric.text_encoder.encode(list(captions)).float()  # [C, text_dim]
    return model.embed_text(sentences.to(model.logit_scale.device)).cpu()


def alignment_scores(
    metric: AlignmentMetric,
    images_uint8: Tensor,
    prompt_indices: Sequence[int] | Tensor,
    candidate_captions: Sequence[str],
) -> RetrievalScores:
    """Retrieval of each image's caption `candidate_captions[prompt_indices[i]]` among all
    candidates (for generated images: the prompts they were sampled from)."""
    if len(set(candidate_captions)) != len(candidate_captions):
        raise ValueError("candidate captions must be distinct (one per held-out concept)")
    targets = torch.as_tensor(prompt_indices, dtype=torch.long)
    if targets.shape != (len(images_uint8),):
        raise ValueError(f"need one prompt index per image, got {tuple(targets.shape)}")
    similarity = (
        image_embeddings(metric, images_uint8) @ text_embeddings(metric, candidate_captions).T
    )  # [N, C]
    return retrieval_scores(similarity, targets)


@torch.inference_mode()
def classify_images(
    metric: AlignmentMetric, images_uint8: Tensor, batch_size: int = 256
) -> tuple[Tensor, Tensor]:
    """Predicted (category, subcategory) indices [N] each (into metric.*_names)."""
    images = checked_images(images_uint8, metric.config.image_size)
    model = metric.classifier.eval()
    device = model.category_head.weight.device
    categories, subcategories = [], []
    for start in range(0, len(images), batch_size):
        category, subcategory = model(to_model_range(images[start : start + batch_size].to(device)))
        categories.append(category.argmax(dim=1).cpu())
        subcategories.append(subcategory.argmax(dim=1).cpu())
    empty = torch.zeros(0, dtype=torch.long)
    return torch.cat(categories or [empty]), torch.cat(subcategories or [empty])


def classifier_accuracy(
    metric: AlignmentMetric,
    images_uint8: Tensor,
    categories: Sequence[int] | Tensor,
    subcategories: Sequence[int] | Tensor,
) -> ClassifierScores:
    """Top-1 category and subcategory accuracy of the classifier trained on real images."""
    if len(images_uint8) == 0:
        raise ValueError("accuracy needs at least one image")
    predicted_category, predicted_subcategory = classify_images(metric, images_uint8)
    category_labels = torch.as_tensor(categories, dtype=torch.long)
    subcategory_labels = torch.as_tensor(subcategories, dtype=torch.long)
    return ClassifierScores(
        num_images=len(images_uint8),
        category_accuracy=(predicted_category == category_labels).double().mean().item(),
        subcategory_accuracy=(predicted_subcategory == subcategory_labels).double().mean().item(),
        category_chance=1.0 / metric.config.num_categories,
        subcategory_chance=1.0 / metric.config.num_subcategories,
    )


def save_alignment_metric(metric: AlignmentMetric, directory: str | Path) -> Path:
    """Writes `alignment.safetensors` (both networks) and `alignment.json` (config, label names,
    card) to `directory`; returns the directory."""
    out = Path(directory).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    state = {f"contrastive.{k}": v for k, v in metric.contrastive.state_dict().items()}
    state |= {f"classifier.{k}": v for k, v in metric.classifier.state_dict().items()}
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(out / WEIGHTS_FILE))
    card = {
        "metric": METRIC_LABEL,
        "config": asdict(metric.config),
        "category_names": list(metric.category_names),
        "subcategory_names": list(metric.subcategory_names),
        **metric.card,
    }
    (out / CARD_FILE).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    return out


def default_metric_dir(image_size: int, seed: int = 0) -> Path:
    """Where `benchmarks/train_alignment.py` saves the metric for `image_size` by default."""
    name = f"emoji-{image_size}-seed{seed}"
    return Path.home() / ".cache" / "unified-latents" / "alignment" / name


def load_alignment_metric(
    directory: str | Path,
    text_encoder: TextEmbedder | None = None,
    device: str | torch.device = "cpu",
) -> AlignmentMetric:
    """The metric saved in `directory`, in eval mode on `device`; `text_encoder` defaults to the
    installed MiniLM (the one it was trained with)."""
    root = Path(directory).expanduser()
    if not (root / WEIGHTS_FILE).is_file() or not (root / CARD_FILE).is_file():
        raise FileNotFoundError(
            f"no alignment metric in {root} (needs {WEIGHTS_FILE} and {CARD_FILE}); train one "
            "with `python benchmarks/train_alignment.py`"
        )
    card = json.loads((root / CARD_FILE).read_text())
    raw = dict(card.pop("config"))
    config = AlignmentConfig(**{**raw, "widths": tuple(raw["widths"])})
    if text_encoder is None:
        from unified_latents.networks.text_encoder import SentenceEncoder

        text_encoder = SentenceEncoder.from_installed_package(device)
    card.pop("metric", None)
    metric = build_alignment_metric(
        config, text_encoder, card.pop("category_names"), card.pop("subcategory_names")
    )
    metric.card = card
    state = load_file(str(root / WEIGHTS_FILE))
    for prefix, module in (
        ("contrastive.", metric.contrastive),
        ("classifier.", metric.classifier),
    ):
        module.load_state_dict(
            {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, strict=True
        )
        module.to(device)
    return metric.eval()
