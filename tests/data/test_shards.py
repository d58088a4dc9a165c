"""WebDataset-style tar shards: grouping, labels, holdout, worker/rank splitting, bad members."""

from __future__ import annotations

import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.data.synthetic import add_member, gradient_rgb, image_bytes, write_shards
from unified_latents.data import shards
from unified_latents.data.datasets import (
    DataConfig,
    DataError,
    DatasetNotFoundError,
    InMemoryImages,
    load_split,
)
from unified_latents.data.decode import BadImageWarning
from unified_latents.data.shards import TarImages


def tar_config(root: Path | str, **overrides: object) -> DataConfig:
    return DataConfig(name="tar", root=str(root), image_size=8, **overrides)  # type: ignore[arg-type]


def train_split(config: DataConfig) -> TarImages:
    data = load_split(config, "train")
    assert isinstance(data, TarImages)
    return data


def labels_of(stream: TarImages) -> list[int]:
    return [label for _, label in stream]


def test_shards_stream_images_with_labels_and_hold_out_a_test_split(tmp_path: Path) -> None:
    write_shards(tmp_path, num_shards=3, per_shard=10)
    (tmp_path / "classes.txt").write_text("\n".join(f"class {i}" for i in range(30)) + "\n")
    config = tar_config(tmp_path, holdout_size=4, channels=3)
    train, test = train_split(config), load_split(config, "test")
    items = list(train)
    assert all(image.shape == (3, 8, 8) and image.dtype == torch.uint8 for image, _ in items)
    # The first 4 samples of the last shard (labels 20..23) are the test split.
    assert sorted(label for _, label in items) == [*range(20), *range(24, 30)]
    assert isinstance(test, InMemoryImages) and test.labels.tolist() == [20, 21, 22, 23]
    assert train.num_classes == 30 and train.class_names[0] == "class 0"
    assert train.image_shape == (3, 8, 8)
    with pytest.raises(TypeError, match="streamed"):
        train[0]


def test_a_fully_held_out_last_shard_is_left_out_of_training(tmp_path: Path) -> None:
    write_shards(tmp_path, num_shards=3, per_shard=10)
    config = tar_config(tmp_path)  # holdout_size=1000 > 10: the whole last shard is test
    train, test = train_split(config), load_split(config, "test")
    assert len(train.shards) == 2 and sorted(labels_of(train)) == list(range(20))
    assert len(test) == 10


def test_shuffle_depends_on_seed_and_epoch(tmp_path: Path) -> None:
    write_shards(tmp_path, num_shards=2, per_shard=20)
    train = train_split(tar_config(tmp_path))
    first = labels_of(train.configured(seed=1, epoch=0, rank=0, world_size=1))
    assert first == labels_of(train.configured(seed=1, epoch=0, rank=0, world_size=1))
    assert first != labels_of(train.configured(seed=1, epoch=1, rank=0, world_size=1))
    assert sorted(first) == sorted(
        labels_of(train.configured(seed=2, epoch=0, rank=0, world_size=1))
    )


@pytest.mark.parametrize("num_shards", [4, 2])  # 4 shards: split by shard; 2: by sample
def test_ranks_and_workers_read_disjoint_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, num_shards: int
) -> None:
    write_shards(tmp_path / "train", num_shards=num_shards, per_shard=6)
    write_shards(tmp_path / "test", num_shards=1, per_shard=2)
    train = train_split(tar_config(tmp_path))
    parts = []
    for rank in range(2):
        for worker in range(2):
            info = SimpleNamespace(id=worker, num_workers=2)
            monkeypatch.setattr(shards, "get_worker_info", lambda info=info: info)
            parts.append(labels_of(train.configured(seed=0, epoch=3, rank=rank, world_size=2)))
    everything = [label for part in parts for label in part]
    assert sorted(everything) == list(range(num_shards * 6))  # disjoint, and covers the epoch
    assert all(parts)


def test_dedicated_split_directories(tmp_path: Path) -> None:
    write_shards(tmp_path / "train", num_shards=1, per_shard=5)
    write_shards(tmp_path / "test", num_shards=1, per_shard=3)
    train = train_split(tar_config(tmp_path))
    assert sorted(labels_of(train)) == list(range(5))
    test = load_split(tar_config(tmp_path, holdout_size=2), "test")
    assert len(test) == 2


def test_glob_root_and_member_grouping(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "a.tar", "w") as archive:
        png = image_bytes(gradient_rgb(size=8), "PNG")
        add_member(archive, "dir/x.png", png)
        add_member(archive, "dir/x.cls", b"3\n")
        add_member(archive, "dir/x.json", b"{}")
        add_member(archive, "dir/y.meta.json", b"{}")  # no image: not a sample, not counted
        add_member(archive, "dir/z.webp", image_bytes(gradient_rgb(size=8), "WEBP"))
    for index in range(5):
        with tarfile.open(tmp_path / f"b{index}.tar", "w") as archive:
            add_member(archive, f"{index}.png", png)
    train = train_split(tar_config(str(tmp_path / "a*.tar"), holdout_size=1))
    assert sorted(labels_of(train)) == [-1, 3]


def test_corrupt_members_are_skipped_and_counted(tmp_path: Path) -> None:
    write_shards(tmp_path, num_shards=2, per_shard=20, corrupt=(5,))
    train = train_split(tar_config(tmp_path, holdout_size=1, max_bad_fraction=0.1))
    with pytest.warns(BadImageWarning, match=r"000005\.png"):
        labels = labels_of(train)
    assert 5 not in labels and len(labels) == 38
    strict = train_split(tar_config(tmp_path, holdout_size=1, max_bad_fraction=0.0))
    with pytest.warns(BadImageWarning), pytest.raises(DataError, match="max_bad_fraction"):
        labels_of(strict)


def test_truncated_shard_keeps_the_samples_before_the_damage(tmp_path: Path) -> None:
    (path,) = write_shards(tmp_path / "train", num_shards=1, per_shard=10)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    write_shards(tmp_path / "test", num_shards=1, per_shard=1)
    train = train_split(tar_config(tmp_path, max_bad_fraction=1.0))
    with pytest.warns(BadImageWarning, match="tar"):
        labels = labels_of(train)
    assert 0 < len(labels) < 10


def test_missing_shards_say_how_to_point_at_them(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"data\.root"):
        load_split(tar_config(tmp_path), "train")
