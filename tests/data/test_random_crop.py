"""data.crop=random-resized: random squares on training folder images that differ between epochs,
repeat exactly for the same (epoch, index) (so resumed streams match), and stay off the test
split and the latent cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.data.synthetic import write_good_images
from unified_latents.data.datasets import DataConfig, DataError, load_split
from unified_latents.data.decode import random_square
from unified_latents.data.folder import FolderImages
from unified_latents.data.stream import BatchStream


def config(root: Path, **overrides: object) -> DataConfig:
    return DataConfig(
        name="folder", root=str(root), image_size=8, channels=3, crop="random-resized", **overrides
    )  # type: ignore[arg-type]


def test_random_square_stays_inside_and_respects_min_area() -> None:
    for seed in range(200):
        left, top, side = random_square(40, 30, seed, min_area=0.25)
        assert left >= 0 and left + side <= 40 and top >= 0 and top + side <= 30
        assert 15 <= side <= 30  # √0.25 · 30 ≤ side ≤ 30
    assert random_square(40, 30, 7, 0.5) == random_square(40, 30, 7, 0.5)
    assert len({random_square(40, 30, s, 0.5) for s in range(20)}) > 10


def test_training_split_crops_randomly_per_epoch_test_split_centres(tmp_path: Path) -> None:
    write_good_images(tmp_path / "train", 4)
    write_good_images(tmp_path / "test", 2)
    train = load_split(config(tmp_path), "train", training=True)
    assert isinstance(train, FolderImages) and train.epoch_indexed
    first, again = train[1][0], train[1][0]
    assert torch.equal(first, again)  # a pure function of (epoch, index)
    later_epochs = [train[1 + epoch * len(train)][0] for epoch in range(1, 4)]
    assert any(not torch.equal(first, image) for image in later_epochs)
    centred = load_split(config(tmp_path), "train")  # ul encode: training=False
    assert isinstance(centred, FolderImages) and not centred.epoch_indexed
    plain = load_split(
        DataConfig(name="folder", root=str(tmp_path), image_size=8, channels=3), "train"
    )
    assert torch.equal(centred[1][0], plain[1][0])
    test = load_split(config(tmp_path), "test", training=True)
    assert isinstance(test, FolderImages) and not test.epoch_indexed


def test_stream_passes_the_epoch_and_resumes_the_same_crops(tmp_path: Path) -> None:
    write_good_images(tmp_path / "train", 4)
    write_good_images(tmp_path / "test", 1)
    data = load_split(config(tmp_path), "train", training=True)
    stream = BatchStream(data, batch_size=2, seed=3)
    batches = [next(stream)[0] for _ in range(6)]  # 3 epochs of 2 batches
    assert not all(torch.equal(batches[0], b) for b in batches[2::2])  # crops vary by epoch
    resumed = BatchStream(data, batch_size=2, seed=3)
    resumed.load_state_dict({"epoch": 2, "batch": 1, "num_examples": 4})
    assert torch.equal(next(resumed)[0], batches[5])


def test_random_crop_needs_an_image_folder_and_a_valid_area() -> None:
    with pytest.raises(DataError, match=r"data\.crop=center"):
        load_split(DataConfig(name="digits", crop="random-resized"), "train", training=True)
    with pytest.raises(ValueError, match="crop_min_area"):
        DataConfig(crop_min_area=0.0)
    with pytest.raises(ValueError, match=r"data\.crop"):
        DataConfig(crop="random")  # type: ignore[arg-type]


def test_imagenet_layout_train_and_val(tmp_path: Path) -> None:
    """ImageNet folders name their held-out split `val`: it becomes the test split."""
    write_good_images(tmp_path / "train" / "goldfish", 3)
    write_good_images(tmp_path / "val" / "goldfish", 2)
    centre = DataConfig(name="folder", root=str(tmp_path), image_size=8, channels=3)
    train, test = load_split(centre, "train"), load_split(centre, "test")
    assert (len(train), len(test)) == (3, 2)
    assert train.class_names == test.class_names == ("goldfish",)
