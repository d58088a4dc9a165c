"""The on-disk latent cache that stage 2 streams from (UL-SPEC §8: cache z_clean once).

    <cache>/<split>/shard_00000.safetensors   z_clean float32 [n, c, h, w], labels int64 [n]
    <cache>/<split>/index.json                 shard sizes, latent shape, provenance

Shards hold the dataset in its own order (`ul encode` writes shard i from items
i·shard_size, …), so a latent's position in the cache is its index in the encoded dataset. A
captioned dataset's captions are therefore not cached: `keys="indices"` makes the stream (and
`first`) yield int64 keys [B, 2] = (dataset index, epoch) in place of labels, and the condition
source looks up `captions.caption(index, epoch)` (conditions.py): a fresh caption per
example per epoch, and caches made before captions existed work unchanged.

Shards are written atomically (temporary file + rename), so an interrupted `ul encode` resumes by
skipping the shards already present. `LatentStream` yields seeded, resumable, rank-sharded batches.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

INDEX_FILE = "index.json"

Keys = Literal["labels", "indices"]


class LatentCacheError(RuntimeError):
    """The latent cache is missing or incomplete."""


def shard_path(directory: Path, index: int) -> Path:
    return directory / f"shard_{index:05d}.safetensors"


def write_shard(directory: Path, index: int, z_clean: Tensor, labels: Tensor) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    final = shard_path(directory, index)
    temporary = final.with_suffix(f".tmp{os.getpid()}")
    save_file(
        {"z_clean": z_clean.float().contiguous().cpu(), "labels": labels.long().contiguous().cpu()},
        temporary,
    )
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, final)
    return final


def write_index(
    directory: Path, shard_sizes: list[int], latent_shape: tuple[int, ...], info: Mapping[str, Any]
) -> None:
    payload = {
        "shard_sizes": shard_sizes,
        "num_examples": sum(shard_sizes),
        "latent_shape": list(latent_shape),
        **info,
    }
    temporary = directory / f".{INDEX_FILE}.tmp"
    temporary.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(temporary, directory / INDEX_FILE)


class LatentCache:
    """A read view of one split of the cache."""

    def __init__(self, directory: Path) -> None:
        index = directory / INDEX_FILE
        if not index.exists():
            raise LatentCacheError(
                f"no latent cache at {directory}; run `ul encode --run AUTOENCODER_RUN` first"
            )
        self.directory = directory
        self.info: dict[str, Any] = json.loads(index.read_text())
        self.shard_sizes: list[int] = self.info["shard_sizes"]
        self.latent_shape = tuple(self.info["latent_shape"])
        missing = [i for i in range(len(self.shard_sizes)) if not shard_path(directory, i).exists()]
        if missing:
            raise LatentCacheError(
                f"latent cache {directory} lacks shards {missing}; re-run `ul encode` to finish it"
            )
        self._loaded: dict[int, tuple[Tensor, Tensor]] = {}

    def __len__(self) -> int:
        return int(self.info["num_examples"])

    def shard(self, index: int) -> tuple[Tensor, Tensor]:
        """(z_clean, labels) of one shard; small caches stay in memory after the first read."""
        if index not in self._loaded:
            tensors = load_file(shard_path(self.directory, index))
            if sum(self.shard_sizes) * 4 * int(torch.tensor(self.latent_shape).prod()) > 2**31:
                self._loaded.clear()  # large cache: keep only the current shard in memory
            self._loaded[index] = (tensors["z_clean"], tensors["labels"])
        return self._loaded[index]

    def first(self, count: int, keys: Keys = "labels") -> tuple[Tensor, Tensor]:
        """The first `count` examples in shard order (a fixed evaluation set), with their labels
        or (`keys="indices"`) their (dataset index, epoch 0) keys [n, 2]."""
        if keys == "indices":
            cached = self.first(count)[0]
            indices = torch.arange(cached.shape[0])
            return cached, torch.stack([indices, torch.zeros_like(indices)], dim=1)
        latents, labels, have = [], [], 0
        for index in range(len(self.shard_sizes)):
            z, y = self.shard(index)
            latents.append(z[: count - have])
            labels.append(y[: count - have])
            have += latents[-1].shape[0]
            if have >= count:
                break
        return torch.cat(latents), torch.cat(labels)

    def statistics(self) -> LatentStatistics:
        """Mean and std over every cached latent value (float64 sums, one pass over shards)."""
        channels = self.latent_shape[0]
        count = 0
        sums = torch.zeros(channels, dtype=torch.float64)
        squares = torch.zeros(channels, dtype=torch.float64)
        for index in range(len(self.shard_sizes)):
            z = self.shard(index)[0].double().transpose(0, 1).reshape(channels, -1)  # [c, B·h·w]
            sums += z.sum(dim=1)
            squares += (z**2).sum(dim=1)
            count += z.shape[1]
        if count == 0:
            raise LatentCacheError(f"latent cache {self.directory} is empty")
        channel_mean = sums / count
        channel_var = (squares / count - channel_mean**2).clamp_min(0.0)
        mean = float(channel_mean.mean())
        variance = float((squares.sum() / (count * channels)) - mean**2)
        return LatentStatistics(
            mean=mean,
            std=max(variance, 0.0) ** 0.5,
            channel_mean=[float(v) for v in channel_mean],
            channel_std=[float(v) for v in channel_var.sqrt()],
        )


@dataclass(frozen=True)
class LatentStatistics:
    """Of all values of a cached split: `std` pools every channel and position."""

    mean: float
    std: float
    channel_mean: list[float]
    channel_std: list[float]


class LatentStream:
    """Infinite batches (z_clean, labels): each epoch visits shards in a seeded order and each
    shard in a seeded permutation, which ranks split by stride. Leftovers smaller than a batch at
    the end of a shard are dropped. `state_dict` allows exact resumption."""

    def __init__(
        self,
        cache: LatentCache,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        keys: Keys = "labels",
    ) -> None:
        if batch_size * world_size > min(cache.shard_sizes):
            raise LatentCacheError(
                f"batch {batch_size} × {world_size} ranks exceeds the smallest shard "
                f"({min(cache.shard_sizes)} latents); re-encode with a larger --shard-size"
            )
        self.cache, self.batch_size, self.seed = cache, batch_size, seed
        self.rank, self.world_size, self.keys = rank, world_size, keys
        self.offsets = [sum(cache.shard_sizes[:i]) for i in range(len(cache.shard_sizes))]
        self.epoch, self.shard_cursor, self.position = 0, 0, 0

    def _generator(self, *salt: int) -> torch.Generator:
        return torch.Generator().manual_seed(hash((self.seed, *salt)) % (2**62))

    def _rank_indices(self) -> tuple[int, Tensor]:
        order = torch.randperm(len(self.cache.shard_sizes), generator=self._generator(self.epoch))
        shard = int(order[self.shard_cursor])
        size = self.cache.shard_sizes[shard]
        permutation = torch.randperm(size, generator=self._generator(self.epoch, shard, 1))
        usable = size - size % self.world_size
        return shard, permutation[:usable][self.rank :: self.world_size]

    def __iter__(self) -> LatentStream:
        return self

    def __next__(self) -> tuple[Tensor, Tensor]:
        while True:
            shard, indices = self._rank_indices()
            if self.position + self.batch_size <= indices.shape[0]:
                break
            self.position, self.shard_cursor = 0, self.shard_cursor + 1
            if self.shard_cursor == len(self.cache.shard_sizes):
                self.epoch, self.shard_cursor = self.epoch + 1, 0
        chosen = indices[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        z_clean, labels = self.cache.shard(shard)
        if self.keys == "indices":
            index = chosen + self.offsets[shard]
            return z_clean[chosen], torch.stack([index, torch.full_like(index, self.epoch)], 1)
        return z_clean[chosen], labels[chosen]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "shard_cursor": self.shard_cursor, "position": self.position}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.shard_cursor = int(state["shard_cursor"])
        self.position = int(state["position"])
