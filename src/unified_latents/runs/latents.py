"""`ul encode`: cache z_clean of a whole dataset once, shard by shard (UL-SPEC §8)."""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from unified_latents.data.datasets import ImageDataset, to_model_range
from unified_latents.data.latent_cache import shard_path, write_shard
from unified_latents.objectives.autoencoder import Autoencoder


@torch.no_grad()
def encode_split(
    model: Autoencoder,
    dataset: ImageDataset,
    directory: Path,
    *,
    shard_size: int,
    batch_size: int,
    device: torch.device,
    rank: int = 0,
    world_size: int = 1,
    progress: bool = True,
) -> list[int]:
    """Encode `dataset` into shards under `directory`; existing shards are kept. Ranks take
    shards round-robin. Returns every shard's size (for `write_index`, once all ranks finish)."""
    total = len(dataset)
    num_shards = max(1, -(-total // shard_size))
    sizes = [min(shard_size, total - i * shard_size) for i in range(num_shards)]
    todo = [
        i
        for i in range(num_shards)
        if i % world_size == rank and not shard_path(directory, i).exists()
    ]
    bar = tqdm(
        total=sum(sizes[i] for i in todo),
        desc=f"encode {directory.name}",
        disable=not progress,
        unit="img",
    )
    for shard in todo:
        start = shard * shard_size
        latents, labels = [], []
        for offset in range(start, start + sizes[shard], batch_size):
            items = [
                dataset[i] for i in range(offset, min(offset + batch_size, start + sizes[shard]))
            ]
            images = torch.stack([image for image, _ in items])
            latents.append(model.encode(to_model_range(images).to(device)).cpu())
            labels.append(torch.tensor([label for _, label in items], dtype=torch.long))
            bar.update(len(items))
        write_shard(directory, shard, torch.cat(latents), torch.cat(labels))
    bar.close()
    return sizes
