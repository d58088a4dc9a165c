"""Suite-wide: `@pytest.mark.cuda` tests are skipped without a CUDA device.

UL_CUDA_TESTS_DEVICE=cpu runs them on the CPU instead (checks the tests themselves on a machine
without a GPU; they then test nothing CUDA-specific)."""

from __future__ import annotations

import os

import pytest
import torch


def cuda_tests_device() -> str:
    return os.environ.get("UL_CUDA_TESTS_DEVICE", "cuda")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if cuda_tests_device() != "cuda" or torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (scripts/gpu-check.sh runs these)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
