"""Suite-wide: `@pytest.mark.cuda` tests are skipped without a CUDA device, a stand-in for the
FID Inception network, and `one_thread` for modules that train in process.

UL_CUDA_TESTS_DEVICE=cpu runs the CUDA tests on the CPU instead (checks the tests themselves on
a machine without a GPU; they then test nothing CUDA-specific)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn


def cuda_tests_device() -> str:
    return os.environ.get("UL_CUDA_TESTS_DEVICE", "cuda")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if cuda_tests_device() != "cuda" or torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (scripts/gpu-check.sh runs these)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """In-process training runs use one thread, as the subprocesses and DDP ranks of other tests
    do: threads fighting other work for a 2-core machine's cores make the tiny models many times
    slower. Modules opt in with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
