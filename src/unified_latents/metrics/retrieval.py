"""Caption retrieval scores from an image–caption similarity matrix (`metrics/alignment.py`):
R@1 and R@5 with their chance levels, and the median rank. Ties are split fairly: a target tied
with t others counts as the expected hit rate under a random tie-break, so a constant model
scores exactly chance."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import Tensor


@dataclass(frozen=True)
class RetrievalScores:
    """Caption retrieval for a set of images among `num_candidates` captions (fractions)."""

    num_images: int
    num_candidates: int
    r1: float
    r5: float
    r1_chance: float  # 1 / num_candidates
    r5_chance: float  # min(5, num_candidates) / num_candidates
    median_rank: float  # 1-based rank of the right caption (ties split fairly)

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def retrieval_scores(similarity: Tensor, targets: Tensor) -> RetrievalScores:
    """R@1, R@5 and median rank of `targets` [N] (candidate indices) in `similarity` [N, C]."""
    if similarity.dim() != 2 or targets.shape != similarity.shape[:1]:
        raise ValueError(
            f"need similarity [N, C] and targets [N], got {similarity.shape}, {targets.shape}"
        )
    num_images, num_candidates = similarity.shape
    if num_candidates == 0 or num_images == 0:
        raise ValueError("retrieval needs at least one image and one candidate caption")
    if targets.min() < 0 or targets.max() >= num_candidates:
        raise ValueError(f"targets must index the {num_candidates} candidates")
    similarity = similarity.double()
    target_similarity = similarity.gather(1, targets[:, None].long())  # [N, 1]
    greater = (similarity > target_similarity).sum(dim=1).double()  # [N]
    tied = (similarity == target_similarity).sum(dim=1).double()  # [N], the target included

    def recall(k: int) -> float:
        # The target's rank is uniform in greater+1 … greater+tied under a random tie-break.
        return ((k - greater) / tied).clamp(0.0, 1.0).mean().item()

    return RetrievalScores(
        num_images=num_images,
        num_candidates=num_candidates,
        r1=recall(1),
        r5=recall(5),
        r1_chance=1.0 / num_candidates,
        r5_chance=min(5, num_candidates) / num_candidates,
        median_rank=(greater + (tied + 1) / 2).median().item(),
    )
