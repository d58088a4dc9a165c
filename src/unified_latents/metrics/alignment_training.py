"""Training the alignment metric's two networks (`metrics.alignment`) on in-memory data.

Callers pass training-split data only: uint8 images [N, 3, S, S], several precomputed frozen
sentence embeddings per image ([N, V, text_dim]: V caption phrasings, one drawn per step) and
integer labels. Both loops use AdamW with a linear warm-up and cosine decay, and random
translations by up to `max_shift_pixels` with white fill (the emoji are composited on white; no
flips, since some emoji face a direction that their caption names).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unified_latents.data.datasets import to_model_range
from unified_latents.metrics.alignment_networks import ContrastiveModel, EmojiClassifier

StepCallback = Callable[[int, float], None]  # (step, loss) after every optimiser step
WHITE = 255


@dataclass(frozen=True, kw_only=True)
class AlignmentTrainingConfig:
    steps: int = 2000
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 100
    max_shift_pixels: int = 2  # random translation range (use 4 for 64×64 images)
    label_smoothing: float = 0.1  # classifier only
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 2:
            raise ValueError("need steps ≥ 1 and batch_size ≥ 2")


def contrastive_loss(
    image_embeddings: Tensor, text_embeddings: Tensor, scale: Tensor, groups: Tensor
) -> Tensor:
    """Symmetric InfoNCE over a batch of unit-norm embeddings [B, D]. Pairs whose images show
    the same emoji (`groups` [B] equal, e.g. two vendors' drawings) are all positives, with the
    target mass split evenly between them, instead of being pushed apart as false negatives."""
    logits = scale * image_embeddings.float() @ text_embeddings.float().T  # [B, B], fp32
    positives = (groups[:, None] == groups[None, :]).float()  # [B, B], symmetric
    targets = positives / positives.sum(dim=1, keepdim=True)
    image_to_text = -(targets * F.log_softmax(logits, dim=1)).sum(dim=1)
    text_to_image = -(targets * F.log_softmax(logits.T, dim=1)).sum(dim=1)
    return 0.5 * (image_to_text.mean() + text_to_image.mean())


def random_shift(images_uint8: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Each image [B, C, H, W] translated by a random (dy, dx) in ±max_shift, white fill."""
    if max_shift == 0:
        return images_uint8
    batch, _, height, width = images_uint8.shape
    padded = F.pad(images_uint8, (max_shift,) * 4, value=WHITE)
    offsets = torch.randint(0, 2 * max_shift + 1, (batch, 2), generator=generator).tolist()
    return torch.stack(
        [padded[i, :, dy : dy + height, dx : dx + width] for i, (dy, dx) in enumerate(offsets)]
    )


def _batches(
    num_items: int, config: AlignmentTrainingConfig, generator: torch.Generator
) -> Iterator[Tensor]:
    """Index batches of shuffled epochs (the last partial batch of an epoch is dropped)."""
    batch_size = min(config.batch_size, num_items)
    while True:
        order = torch.randperm(num_items, generator=generator)
        for start in range(0, num_items - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


def _optimizer(
    model: nn.Module, config: AlignmentTrainingConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW, weight decay on weight matrices and kernels only; warm-up then cosine to 0."""
    decayed = [p for p in model.parameters() if p.dim() >= 2]
    others = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decayed, "weight_decay": config.weight_decay},
            {"params": others, "weight_decay": 0.0},
        ],
        lr=config.lr,
    )

    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _train(
    model: nn.Module,
    num_items: int,
    loss_of_batch: Callable[[Tensor, torch.Generator], Tensor],
    config: AlignmentTrainingConfig,
    on_step: StepCallback | None,
) -> list[float]:
    generator = torch.Generator().manual_seed(config.seed)
    optimizer, schedule = _optimizer(model, config)
    model.train()
    losses = []
    batches = _batches(num_items, config, generator)
    for step in range(config.steps):
        loss = loss_of_batch(next(batches), generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(step + 1, losses[-1])
    model.eval()
    return losses


def train_contrastive(
    model: ContrastiveModel,
    images_uint8: Tensor,
    sentence_features: Tensor,
    groups: Tensor,
    config: AlignmentTrainingConfig,
    on_step: StepCallback | None = None,
) -> list[float]:
    """Trains `model` in place on images [N, 3, S, S] with sentence embeddings [N, V, text_dim]
    (one of the V phrasings drawn per image and step) and emoji ids `groups` [N]; returns the
    loss of every step."""
    num_items, num_variants = sentence_features.shape[:2]
    if len(images_uint8) != num_items or groups.shape != (num_items,):
        raise ValueError("images, sentence features and groups must have the same length")
    device = model.logit_scale.device

    def loss_of_batch(index: Tensor, generator: torch.Generator) -> Tensor:
        variant = torch.randint(0, num_variants, (len(index),), generator=generator)
        images = random_shift(images_uint8[index], config.max_shift_pixels, generator)
        image_embeddings = model.embed_images(to_model_range(images.to(device)))
        text_embeddings = model.embed_text(sentence_features[index, variant].to(device))
        return contrastive_loss(
            image_embeddings, text_embeddings, model.scale(), groups[index].to(device)
        )

    return _train(model, num_items, loss_of_batch, config, on_step)


def train_classifier(
    model: EmojiClassifier,
    images_uint8: Tensor,
    categories: Tensor,
    subcategories: Tensor,
    config: AlignmentTrainingConfig,
    on_step: StepCallback | None = None,
) -> list[float]:
    """Trains `model` in place: cross-entropy of the category plus that of the subcategory."""
    if not len(images_uint8) == len(categories) == len(subcategories):
        raise ValueError("images and labels must have the same length")
    device = model.category_head.weight.device

    def loss_of_batch(index: Tensor, generator: torch.Generator) -> Tensor:
        images = random_shift(images_uint8[index], config.max_shift_pixels, generator)
        category, subcategory = model(to_model_range(images.to(device)))
        smoothing = config.label_smoothing
        return F.cross_entropy(
            category, categories[index].to(device), label_smoothing=smoothing
        ) + F.cross_entropy(subcategory, subcategories[index].to(device), label_smoothing=smoothing)

    return _train(
        model,
        num_items=len(images_uint8),
        loss_of_batch=loss_of_batch,
        config=config,
        on_step=on_step,
    )
