"""Shared fixtures for the command tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def single_thread() -> Iterator[None]:
    """Toy networks on 8×8 images: a second intra-op thread only adds synchronisation, and on a
    busy CPU its spin-waits made each convolution ~30× slower (measured: 3 ms vs 0.1 ms)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
