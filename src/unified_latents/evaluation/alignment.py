"""Text–image alignment of a caption-conditioned base model's samples in `ul evaluate` (issue 16),
with the metric trained in this project (metrics/alignment.py; not CLIP).

Sample i was drawn for the fixed caption of held-out image i mod K (`generation.py:
evaluation_conditions`); its retrieval target is that image's emoji name among the names of all
K held-out images (the candidates `benchmarks/train_alignment.py` validated the metric with), so
R@1 has chance 1 / (distinct names). The real held-out images scored the same way are the
ceiling (`r1_real`). Needs the metric trained for the samples' size (`python
benchmarks/train_alignment.py --image-size S`); without it the note says so.
"""

from __future__ import annotations

import torch
from torch import Tensor

from unified_latents.conditions import Captions
from unified_latents.metrics.alignment import (
    METRIC_LABEL,
    alignment_scores,
    default_metric_dir,
    load_alignment_metric,
)


def alignment_metrics(
    samples: Tensor, real: Tensor, captions: Captions, device: torch.device
) -> tuple[dict[str, float], dict[str, str]]:
    """R@1/R@5 of uint8 samples (sample i for held-out caption i mod K), their chance, and R@1 of
    the real held-out images `real` (image i has caption i); nothing for captions without
    emoji names."""
    concept = getattr(captions, "concept", None)
    if concept is None:
        return {}, {}
    directory = default_metric_dir(samples.shape[-1])
    try:
        metric = load_alignment_metric(directory, device=device)
    except FileNotFoundError as error:
        return {}, {"r1": f"not measured: {error}"}
    count = len(captions)
    names = [concept(index) for index in range(count)]
    candidates = sorted(set(names))
    position = {name: index for index, name in enumerate(candidates)}
    targets = [position[names[i % count]] for i in range(samples.shape[0])]
    generated = alignment_scores(metric, samples, targets, candidates)
    ceiling = alignment_scores(metric, real, targets[: real.shape[0]], candidates)
    metrics = {
        "r1": generated.r1,
        "r5": generated.r5,
        "r1_chance": generated.r1_chance,
        "r1_real": ceiling.r1,
    }
    where = f"among the {len(candidates)} emoji names of the held-out split"
    label = f"{METRIC_LABEL}, weights {directory}"
    notes = {
        "r1": f"caption retrieval of {generated.num_images} samples {where} ({label})",
        "r1_real": f"the same for {ceiling.num_images} real held-out images (the ceiling)",
    }
    return metrics, notes
