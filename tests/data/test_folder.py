"""Image folders: labels, splits, bad-file handling and consistent mode conversion."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.data.synthetic import image_bytes, write_bad_images, write_good_images
from unified_latents.data import sources
from unified_latents.data.datasets import DataConfig, DataError, DatasetNotFoundError, load_split
from unified_latents.data.decode import BadImageWarning, decode_image
from unified_latents.data.folder import FolderImages


def folder(root: Path, split: str = "train", **overrides: object) -> FolderImages:
    config = DataConfig(name="folder", root=str(root), **overrides)  # type: ignore[arg-type]
    data = load_split(config, split)  # type: ignore[arg-type]
    assert isinstance(data, FolderImages)
    return data


def test_good_images_load_and_bad_ones_are_reported(tmp_path: Path) -> None:
    good = write_good_images(tmp_path / "train", 10)
    bad = write_bad_images(tmp_path / "train")
    write_good_images(tmp_path / "test", 1)
    (tmp_path / "train" / "readme.txt").write_text("not listed: not an image suffix")
    with pytest.warns(BadImageWarning, match="empty"):
        data = folder(tmp_path, max_bad_fraction=0.5)
    # The ten good images and four listed-but-undecodable files (the empty one is dropped).
    assert len(data) == 14 and data.class_names == ()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = [data[index] for index in range(len(data))]
    for image, label in items:
        assert image.shape == (1, 32, 32) and image.dtype == torch.uint8 and label == -1
    # Bad files are replaced by the next good one: every good image is among the items.
    originals = {path: data[data.files.index(path)][0] for path in good}
    assert all(any(torch.equal(image, x) for image, _ in items) for x in originals.values())
    undecodable = {bad[kind] for kind in ("corrupt", "truncated_png", "truncated_jpeg", "text")}
    assert {Path(name) for name in data.bad_files} == {*undecodable, bad["empty"]}
    messages = " ".join(str(w.message) for w in caught)
    assert all(issubclass(w.category, BadImageWarning) for w in caught)
    assert all(str(path) in messages for path in undecodable) and "Traceback" not in messages


def test_too_many_bad_files_is_a_data_error(tmp_path: Path) -> None:
    write_good_images(tmp_path, 4)
    write_bad_images(tmp_path)
    with pytest.warns(BadImageWarning, match="empty"):
        data = folder(tmp_path, max_bad_fraction=0.2, holdout_size=1)  # 1 empty of 9 is allowed
    with pytest.warns(BadImageWarning), pytest.raises(DataError, match="max_bad_fraction"):
        for index in range(len(data)):
            data[index]


def test_empty_files_alone_can_exceed_the_limit(tmp_path: Path) -> None:
    write_good_images(tmp_path, 3)
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.warns(BadImageWarning), pytest.raises(DataError, match="empty"):
        folder(tmp_path, max_bad_fraction=0.0)


def test_labels_from_subdirectories_and_explicit_splits(tmp_path: Path) -> None:
    for name in ("cat", "dog", "fox"):
        write_good_images(tmp_path / "train" / name, 2)
    for name in ("cat", "fox"):  # no dog in the test split: fox must keep label 2
        write_good_images(tmp_path / "test" / name, 1)
    train, test = folder(tmp_path, "train"), folder(tmp_path, "test")
    assert train.class_names == test.class_names == ("cat", "dog", "fox")
    assert len(train) == 6 and len(test) == 2
    assert list(train.labels) == [0, 0, 1, 1, 2, 2] and list(test.labels) == [0, 2]
    assert train[5][1] == 2 and test[1][1] == 2


def test_holdout_is_deterministic_and_disjoint(tmp_path: Path) -> None:
    write_good_images(tmp_path / "a", 10)
    write_good_images(tmp_path / "b", 10, start=10)
    train = folder(tmp_path, "train", holdout_size=3)
    test = folder(tmp_path, "test", holdout_size=3)
    assert len(test) == 3 and len(train) == 17
    assert not set(train.files) & set(test.files)
    assert folder(tmp_path, "test", holdout_size=3).files == test.files
    assert train.class_names == ("a", "b")


def test_missing_folder_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"data\.root"):
        folder(tmp_path / "nowhere")
    with pytest.raises(DatasetNotFoundError, match="no images"):
        folder(tmp_path)


def test_missing_emoji_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "EMOJI_SUBDIR", Path("no/such/dir"))
    with pytest.raises(DatasetNotFoundError, match=r"install-emoji\.sh"):
        load_split(DataConfig(name="emoji", channels=3), "train")


def test_emoji_reads_a_folder_in_colour(tmp_path: Path) -> None:
    transparent = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    (tmp_path / "Smileys").mkdir()
    (tmp_path / "Smileys" / "1f600.png").write_bytes(image_bytes(transparent, "PNG"))
    for index in range(4):
        (tmp_path / "Smileys" / f"{index}.png").write_bytes(image_bytes(transparent, "PNG"))
    data = load_split(DataConfig(name="emoji", root=str(tmp_path), channels=3), "train")
    image, label = data[0]
    assert image.shape == (3, 32, 32) and label == 0
    assert image.min() == 255  # fully transparent → the white background


def encoded(array: np.ndarray, image_format: str = "PNG") -> bytes:
    """The mode follows the array: uint8 2-D → L, 4 channels → RGBA, uint16 → I;16, int32 → I."""
    return image_bytes(Image.fromarray(array), image_format)


def test_mode_conversions_are_consistent() -> None:
    flat_grey = np.full((20, 30), 100, dtype=np.uint8)
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[:, :10] = (0, 0, 0, 255)  # left half opaque black, right half transparent
    sixteen = np.full((20, 20), 100 * 257, dtype=np.uint16)
    cmyk = image_bytes(Image.new("CMYK", (20, 20), (255, 0, 0, 0)), "TIFF")  # full cyan ink
    palette = Image.new("P", (20, 20), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    cases = {
        "L": (encoded(flat_grey), 100, 100),
        "I;16": (encoded(sixteen), 100, 100),  # 16-bit scaled by 1/257, not clipped
        "I": (encoded(sixteen.astype(np.int32), "TIFF"), 100, 100),
        "RGBA": (encoded(rgba), 0, 255),  # composited on white
        "LA": (image_bytes(Image.fromarray(rgba).convert("LA"), "PNG"), 0, 255),
        "CMYK": (cmyk, 179, 179),  # cyan (0, 255, 255) → luma (0.587 + 0.114)·255
        "P": (image_bytes(palette, "PNG"), 76, 76),  # pure red → luma 0.299·255
    }
    luma = torch.tensor([0.299, 0.587, 0.114])[:, None, None]
    for mode, (payload, low, high) in cases.items():
        grey, colour = decode_image(payload, 16, 1), decode_image(payload, 16, 3)
        assert grey.shape == (1, 16, 16) and colour.shape == (3, 16, 16), mode
        assert grey.dtype == colour.dtype == torch.uint8, mode
        assert grey.min().item() in (low - 1, low, low + 1), mode
        assert grey.max().item() in (high - 1, high, high + 1), mode
        # Greyscale output is the luma of the colour output (the same conversion path).
        assert ((colour.float() * luma).sum(0) - grey[0].float()).abs().max() <= 1.5, mode
    assert decode_image(image_bytes(palette, "PNG"), 8, 3)[:, 0, 0].tolist() == [255, 0, 0]
    assert decode_image(cmyk, 8, 3)[:, 0, 0].tolist() == [0, 255, 255]


def test_palette_transparency_and_centre_crop() -> None:
    palette = Image.new("P", (40, 20), 0)
    palette.putpalette([0, 0, 0] * 256)
    palette.paste(1, (10, 0, 30, 20))  # the centre square uses colour 1 (black, opaque)
    palette.info["transparency"] = 0  # colour 0 (the sides) is transparent
    image = decode_image(image_bytes(palette, "PNG"), 10, 1)
    assert image.shape == (1, 10, 10) and image.max() <= 1  # the crop kept only the centre


def test_a_symlink_loop_lists_each_real_file_once_in_one_split(tmp_path: Path) -> None:
    """Issue 15: `a/loop -> ..` made 50 files 1640 train + 410 test entries, every image in both
    splits, and hid the 8 % bad files from data.max_bad_fraction."""
    root = tmp_path / "images"
    write_good_images(root / "a", 25)
    write_good_images(root / "b", 21)
    for index in range(4):
        (root / "b" / f"bad_{index}.png").write_bytes(b"not a PNG")
    (root / "a" / "loop").symlink_to("..")  # back to the root
    (root / "b" / "alias.png").symlink_to(root / "a" / "good_000.png")  # a second name
    with pytest.warns(BadImageWarning, match=r"symbolic link.*images/a/loop"):
        train = folder(root, "train", holdout_size=10, max_bad_fraction=0.05)
    with pytest.warns(BadImageWarning, match="a link loop"):
        test = folder(root, "test", holdout_size=10, max_bad_fraction=0.05)
    assert len(train) + len(test) == 50 and len(test) == 10
    assert not {p.resolve() for p in train.files} & {p.resolve() for p in test.files}
    assert len({p.resolve() for p in train.files}) == len(train)
    assert train.class_names == ("a", "b")
    # 4 bad of 50 listed files is over 5 %: reading one epoch fails as it should
    with pytest.warns(BadImageWarning), pytest.raises(DataError, match="max_bad_fraction"):
        for index in range(len(train)):
            train[index]


def test_a_link_to_a_sibling_folder_changes_neither_labels_nor_split(tmp_path: Path) -> None:
    write_good_images(tmp_path / "cats", 10)
    write_good_images(tmp_path / "dogs", 10, start=10)
    before = folder(tmp_path, "test", holdout_size=4)
    (tmp_path / "all_cats").symlink_to(tmp_path / "cats")  # listed before `cats` by name
    (tmp_path / "dogs" / "same_as_cat_0.png").symlink_to(tmp_path / "cats" / "good_000.png")
    with pytest.warns(BadImageWarning, match="all_cats"):
        after = folder(tmp_path, "test", holdout_size=4)
    with pytest.warns(BadImageWarning, match="all_cats"):
        train = folder(tmp_path, "train", holdout_size=4)
    assert after.files == before.files and after.labels == before.labels
    assert train.class_names == ("cats", "dogs") and len(train) == 16
    assert all(".." not in str(path) and "all_cats" not in str(path) for path in train.files)
    assert tmp_path / "dogs" / "same_as_cat_0.png" not in train.files


def test_a_dangling_link_counts_as_a_bad_file(tmp_path: Path) -> None:
    write_good_images(tmp_path, 9)
    (tmp_path / "gone.png").symlink_to(tmp_path / "missing.png")
    with pytest.warns(BadImageWarning, match="dangling"):
        data = folder(tmp_path, holdout_size=1, max_bad_fraction=0.2)
    assert str(tmp_path / "gone.png") in data.bad_files and len(data) == 8


def test_a_one_image_folder_and_a_file_as_root_say_what_is_wrong(tmp_path: Path) -> None:
    (image,) = write_good_images(tmp_path / "one", 1)
    assert len(folder(tmp_path / "one", "train")) == 1
    with pytest.raises(DataError, match="1 usable image: too few") as caught:
        folder(tmp_path / "one", "test")
    assert "holdout_size" not in str(caught.value)  # lowering it cannot help (it is ≥ 1)
    with pytest.raises(DatasetNotFoundError, match="is a file, not a directory"):
        folder(image)
