"""BatchStream: seeded epochs, exact resume, rank sharding, lazy folders and tar streams."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.data.synthetic import write_bad_images, write_good_images, write_shards
from unified_latents.data.datasets import DataConfig, DataError, InMemoryImages, load_split
from unified_latents.data.decode import BadImageWarning
from unified_latents.data.stream import BatchStream


def numbered(count: int) -> InMemoryImages:
    """Example i has label i and every pixel equal to i % 256, so batches reveal indices."""
    labels = torch.arange(count)
    images = (labels % 256).to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 4, 4)
    return InMemoryImages(images.clone(), labels, ())


def take(stream: BatchStream, count: int) -> list[list[int]]:
    return [next(stream)[1].tolist() for _ in range(count)]


def flat(batches: list[list[int]]) -> list[int]:
    return [index for batch in batches for index in batch]


def test_batches_are_deterministic_and_epochs_are_permutations() -> None:
    data = numbered(40)
    stream = BatchStream(data, batch_size=8, seed=3)
    images, labels = next(stream)
    assert images.shape == (8, 1, 4, 4) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64 and torch.equal(images[:, 0, 0, 0].long(), labels)
    first = [labels.tolist(), *take(stream, 4)]
    assert sorted(flat(first)) == list(range(40))  # epoch 0 visits everything once
    second = take(stream, 5)
    assert sorted(flat(second)) == list(range(40)) and second != first
    assert take(BatchStream(data, batch_size=8, seed=3), 5) == first
    assert take(BatchStream(data, batch_size=8, seed=4), 5) != first


def test_incomplete_last_batch_is_dropped() -> None:
    stream = BatchStream(numbered(43), batch_size=8, seed=0)
    assert stream.num_batches_per_epoch == 5
    take(stream, 5)
    assert stream.state_dict()["epoch"] == 0
    take(stream, 1)
    assert stream.state_dict()["epoch"] == 1


def test_resume_continues_with_exactly_the_same_batches() -> None:
    data = numbered(37)
    original = BatchStream(data, batch_size=6, seed=11, rank=1, world_size=2)
    take(original, 7)  # crosses an epoch boundary (3 batches per epoch on each rank)
    state = json.loads(json.dumps(original.state_dict()))
    assert all(isinstance(value, int) for value in state.values())
    expected = take(original, 8)
    restored = BatchStream(data, batch_size=6, seed=11, rank=1, world_size=2)
    restored.load_state_dict(state)
    assert take(restored, 8) == expected


@pytest.mark.parametrize("count", [48, 50])
def test_ranks_get_disjoint_equal_shares_covering_the_epoch(count: int) -> None:
    world_size, batch_size = 3, 4
    streams = [
        BatchStream(numbered(count), batch_size=batch_size, seed=5, rank=r, world_size=world_size)
        for r in range(world_size)
    ]
    shares = [flat(take(stream, streams[0].num_batches_per_epoch)) for stream in streams]
    assert len({len(share) for share in shares}) == 1  # same number of batches per rank
    seen = [index for share in shares for index in share]
    assert len(seen) == len(set(seen)) == world_size * (count // world_size // batch_size) * 4
    if count % (world_size * batch_size) == 0:
        assert sorted(seen) == list(range(count))


def test_too_small_dataset_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="too few"):
        BatchStream(numbered(5), batch_size=4, seed=0, world_size=2)


def folder_data(root: Path, count: int = 12) -> DataConfig:
    write_good_images(root / "train", count)
    write_good_images(root / "test", 1)
    return DataConfig(name="folder", root=str(root), image_size=8, channels=3)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_lazy_folder_batches_resume_exactly(tmp_path: Path, num_workers: int) -> None:
    data = load_split(folder_data(tmp_path), "train")
    stream = BatchStream(data, batch_size=4, seed=1, num_workers=num_workers)
    images, labels = next(stream)
    assert images.shape == (4, 3, 8, 8) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64 and labels.tolist() == [-1] * 4
    take(stream, 3)  # into the second epoch (3 batches per epoch)
    state = stream.state_dict()
    expected = [next(stream)[0] for _ in range(4)]
    restored = BatchStream(data, batch_size=4, seed=1, num_workers=num_workers)
    restored.load_state_dict(state)
    assert all(torch.equal(next(restored)[0], batch) for batch in expected)


def test_worker_errors_reach_the_user_without_a_traceback(tmp_path: Path) -> None:
    write_good_images(tmp_path / "train", 2)
    write_bad_images(tmp_path / "train")
    write_good_images(tmp_path / "test", 1)
    config = DataConfig(name="folder", root=str(tmp_path), image_size=8, max_bad_fraction=0.2)
    with pytest.warns(BadImageWarning):
        data = load_split(config, "train")
    stream = BatchStream(data, batch_size=2, seed=0, num_workers=1)
    with pytest.raises(DataError, match="max_bad_fraction") as caught:
        take(stream, 3)
    assert "Traceback" not in str(caught.value)


def test_tar_stream_batches_and_restarts_the_epoch_on_resume(tmp_path: Path) -> None:
    write_shards(tmp_path / "train", num_shards=2, per_shard=8)
    write_shards(tmp_path / "test", num_shards=1, per_shard=1)
    data = load_split(DataConfig(name="tar", root=str(tmp_path), image_size=8), "train")
    stream = BatchStream(data, batch_size=4, seed=2)
    epoch = take(stream, 4)
    assert sorted(flat(epoch)) == list(range(16))
    take(stream, 1)
    assert stream.state_dict()["epoch"] == 1
    next_epoch = take(stream, 3)
    restored = BatchStream(data, batch_size=4, seed=2)
    restored.load_state_dict(stream.state_dict())
    assert take(restored, 1) == take(BatchStream(data, batch_size=4, seed=2), 5)[4:]
    assert next_epoch != epoch[:3]


def test_tar_stream_with_workers_covers_each_epoch(tmp_path: Path) -> None:
    write_shards(tmp_path / "train", num_shards=4, per_shard=4)
    write_shards(tmp_path / "test", num_shards=1, per_shard=1)
    data = load_split(DataConfig(name="tar", root=str(tmp_path), image_size=8), "train")
    stream = BatchStream(data, batch_size=4, seed=0, num_workers=2)
    assert sorted(flat(take(stream, 4))) == list(range(16))
