"""A small regression task for exercising the shared training loop without real data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from unified_latents.objectives.terms import LossTerms


@dataclass(frozen=True)
class ToyTerms(LossTerms):
    squared_error: Tensor


class ToyStream:
    """Deterministic, resumable batches of a fixed linear-regression dataset."""

    def __init__(self, batch_size: int, seed: int, rank: int, world_size: int) -> None:
        generator = torch.Generator().manual_seed(99)
        self.inputs = torch.randn(256, 4, generator=generator)
        self.targets = self.inputs @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.position = 0

    def __next__(self) -> tuple[Tensor, Tensor]:
        generator = torch.Generator().manual_seed(self.seed * 7919 + self.position)
        index = torch.randint(0, 256, (self.batch_size * self.world_size,), generator=generator)
        index = index[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
        self.position += 1
        return self.inputs[index], self.targets[index]

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.position = int(state["position"])


class ToyModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 16)
        self.dropout = nn.Dropout(0.1)  # exercises the global RNG on resume
        self.head = nn.Linear(16, 1)

    def forward(self, inputs: Tensor, targets: Tensor, generator: torch.Generator) -> ToyTerms:
        noise = 0.01 * torch.randn(inputs.shape, generator=generator)  # explicit-RNG noise
        prediction = self.head(self.dropout(torch.relu(self.linear(inputs + noise)))).squeeze(-1)
        error = (prediction.float() - targets) ** 2
        return ToyTerms(loss=error, squared_error=error)


class ToyTask:
    plots: ClassVar[dict[str, tuple[str, ...]]] = {"loss": ("loss",)}
    progress_keys = ("loss",)
    loss_normalizer = 1.0

    def __init__(self, nan_at_steps: frozenset[int] = frozenset()) -> None:
        torch.manual_seed(0)
        self.model = ToyModel()
        self.nan_at_steps = nan_at_steps
        self.calls = 0
        self.evaluations: list[int] = []

    def batches(self, micro_batch_size: int, seed: int, rank: int, world_size: int) -> ToyStream:
        return ToyStream(micro_batch_size, seed, rank, world_size)

    def loss(
        self, module: nn.Module, batch: Any, generator: torch.Generator, step: int
    ) -> LossTerms:
        self.calls += 1
        terms = module(*batch, generator)
        if self.calls in self.nan_at_steps:
            return ToyTerms(loss=terms.loss * float("nan"), squared_error=terms.squared_error)
        return terms

    def summarize(self, means: Mapping[str, float]) -> dict[str, float]:
        return dict(means)

    def evaluate(self, ema: nn.Module, step: int, run_dir: Path) -> dict[str, float]:
        self.evaluations.append(step)
        return {"ema_weight_norm": float(sum(p.norm() for p in ema.parameters()))}
