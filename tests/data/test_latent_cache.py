"""The latent cache: written shards read back, and the statistics stage 2 normalises by."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from unified_latents.data.latent_cache import (
    LatentCache,
    LatentCacheError,
    write_index,
    write_shard,
)


def make_cache(directory: Path, shards: list[torch.Tensor]) -> LatentCache:
    for index, z in enumerate(shards):
        write_shard(directory, index, z, torch.arange(z.shape[0]))
    write_index(directory, [z.shape[0] for z in shards], tuple(shards[0].shape[1:]), {})
    return LatentCache(directory)


def test_statistics_pool_all_shards(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    scales = torch.tensor([0.2, 0.5, 1.0]).reshape(1, 3, 1, 1)
    shards = [scales * torch.randn(n, 3, 2, 2, generator=generator) + 0.1 for n in (50, 30)]
    stats = make_cache(tmp_path, shards).statistics()
    every = torch.cat(shards).double()
    assert stats.mean == pytest.approx(float(every.mean()), abs=1e-9)
    assert stats.std == pytest.approx(float(every.std(unbiased=False)), rel=1e-9)
    channel_std = every.transpose(0, 1).reshape(3, -1).std(dim=1, unbiased=False)
    assert stats.channel_std == pytest.approx(channel_std.tolist(), rel=1e-9)


def test_first_reads_across_shards(tmp_path: Path) -> None:
    shards = [torch.full((4, 1, 1, 1), float(i)) for i in range(3)]
    z, labels = make_cache(tmp_path, shards).first(6)
    assert z.flatten().tolist() == [0, 0, 0, 0, 1, 1] and labels.tolist() == [0, 1, 2, 3, 0, 1]


def test_missing_cache_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(LatentCacheError, match="ul encode"):
        LatentCache(tmp_path / "nowhere")
