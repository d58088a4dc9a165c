"""Model initialisation from a seed, without touching the process's global RNG."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Inside, torch's CPU generator starts from `seed` (so building a model gives the same
    weights for the same seed); afterwards it is back where it was. Build models on the CPU
    inside this block and move them to their device afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
