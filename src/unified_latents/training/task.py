"""What a training stage hands to the shared loop (`training/loop.py`).

Stage 1 (autoencoder), stage 2 (base model) and the end-to-end variant each implement this
protocol; the loop owns everything else (optimizer, EMA, precision, checkpoints, logging).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from unified_latents.objectives.terms import LossTerms


class BatchSource(Protocol):
    """An infinite, resumable iterator of training batches (see `data/stream.py`)."""

    def __next__(self) -> Any: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


class TrainingTask(Protocol):
    @property
    def model(self) -> nn.Module:
        """Every trainable module; `loss` receives it (possibly DDP-wrapped)."""
        ...

    @property
    def plots(self) -> Mapping[str, Sequence[str]]:
        """Plot file stem → metric keys drawn in it."""
        ...

    @property
    def progress_keys(self) -> Sequence[str]:
        """Metric keys shown on the progress bar."""
        ...

    @property
    def loss_normalizer(self) -> float:
        """Dimensions per example. Losses are sums over dimensions (nats per image); the
        optimizer sees them divided by this constant. Adam is invariant to it, but it keeps
        `optim.grad_clip` and the logged grad_norm on a per-dimension scale."""
        ...

    def batches(self, micro_batch_size: int, seed: int, rank: int, world_size: int) -> BatchSource:
        """The training stream for this rank, with `micro_batch_size` examples per batch."""
        ...

    def loss(
        self, module: nn.Module, batch: Any, generator: torch.Generator, step: int
    ) -> LossTerms:
        """Per-example loss terms for one micro-batch at optimizer step `step` (0-based); the
        loop averages `loss`."""
        ...

    def summarize(self, means: Mapping[str, float]) -> dict[str, float]:
        """Training log values from averaged terms (e.g. nats → bits/pixel)."""
        ...

    def evaluate(self, ema: nn.Module, step: int, run_dir: Path) -> dict[str, float]:
        """Held-out metrics with the EMA weights; may also write pictures under `run_dir`."""
        ...
