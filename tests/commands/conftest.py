"""Shared fixtures for the command tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True, scope="module")
def single_thread() -> Iterator[None]:
    """Toy networks on 8×8 images: a second intra-op thread only adds synchronisation, and on a
    busy CPU its spin-waits made each convolution ~30× slower (measured: 3 ms vs 0.1 ms)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class StandInFeatures(nn.Module):
    """Average-pooled pixels through a fixed random projection: the FID network's contract
    ([N, 3, 299, 299] → [N, 2048]) in microseconds. The real weights are tested in
    tests/metrics/test_inception.py and cost seconds per image on a busy CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.projection = nn.Linear(3 * 4 * 4, 2048)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.adaptive_avg_pool2d(images, 4).flatten(1)  # [N, 48]
        return torch.tanh(self.projection(pooled))  # [N, 2048]


@pytest.fixture(scope="session")
def stand_in_inception(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TorchScript file for `--inception`."""
    path = tmp_path_factory.mktemp("inception") / "stand_in_inception.pt"
    with torch.random.fork_rng():
        torch.manual_seed(0)
        torch.jit.script(StandInFeatures()).save(str(path))
    return path
