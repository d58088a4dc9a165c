"""Directories of image files (ImageFolder-style labels), decoded lazily item by item.

Bad files are handled lazily, so that large folders start instantly and DataLoader workers
share the work: listing finds files by suffix and counts zero-byte files as bad right away;
`__getitem__` decodes on demand, and an undecodable file is warned about (naming it), counted
by the process's `BadFileLog`, and replaced by the next decodable file in list order. The
substitute is a pure function of the index, so batches keep their size and a resumed stream
reproduces them. Each process raises `DataError` once the bad files *it* has seen exceed
`max_bad_fraction` of all listed files: exact in a single process by the end of an epoch, and
never premature with workers (a worker sees a subset, so it may need more than one epoch).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from unified_latents.data.containers import (
    DataError,
    DatasetNotFoundError,
    ImageDataset,
    Split,
    derived_seed,
)
from unified_latents.data.decode import (
    IMAGE_SUFFIXES,
    BadFileLog,
    BadImageWarning,
    decode_image,
    describe_failure,
    random_square,
)


@dataclass(frozen=True)
class FolderListing:
    """The usable files of one split, their labels (-1 = unlabelled) and the class names."""

    files: tuple[Path, ...]
    labels: tuple[int, ...]
    class_names: tuple[str, ...]
    empty: tuple[Path, ...]  # zero-byte files found while listing, counted as bad


class FolderImages(ImageDataset):
    """Lazily decoded images of one split of a folder."""

    def __init__(
        self,
        listing: FolderListing,
        image_size: int,
        channels: int,
        max_bad_fraction: float,
        random_crop_min_area: float = 0.0,
    ) -> None:
        """`random_crop_min_area` > 0: random-resized square crops (`decode.random_square`) whose
        position and size are a pure function of (epoch, index), so resumed streams reproduce
        them; the stream passes `epoch · len(self) + index` (see `epoch_indexed`)."""
        if not listing.files:
            raise DataError(
                "the image folder split is empty; add images or lower data.holdout_size"
            )
        self.files = listing.files
        self.labels = listing.labels
        self.class_names = listing.class_names
        self.image_size, self.channels = image_size, channels
        self.image_shape = (channels, image_size, image_size)
        self.log = BadFileLog(max_bad_fraction, total=len(listing.files) + len(listing.empty))
        self.log.add_known([str(path) for path in listing.empty])
        self._known_bad: set[int] = set()
        self.random_crop_min_area = random_crop_min_area
        self.epoch_indexed = random_crop_min_area > 0.0  # read by data/stream.py

    @property
    def bad_files(self) -> list[str]:
        """Empty files, and files this process failed to decode so far."""
        return list(self.log.bad)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        epoch = 0
        if self.epoch_indexed and index >= 0:
            epoch, index = divmod(index, len(self.files))
        if not 0 <= index < len(self.files):
            raise IndexError(f"index {index} out of range for {len(self.files)} images")
        for offset in range(len(self.files)):
            candidate = (index + offset) % len(self.files)
            if candidate in self._known_bad:
                continue
            image = self._decode(candidate, epoch)
            if image is not None:
                return image, self.labels[candidate]
        raise DataError("no image in the folder split can be decoded")

    def _decode(self, index: int, epoch: int = 0) -> Tensor | None:
        path = self.files[index]
        crop = None
        if self.random_crop_min_area > 0.0:
            seed, min_area = derived_seed(epoch, index), self.random_crop_min_area

            def crop(width: int, height: int) -> tuple[int, int, int]:
                return random_square(width, height, seed, min_area)

        try:
            image = decode_image(path, self.image_size, self.channels, crop)
        except Exception as error:  # PIL raises many types (OSError, SyntaxError, ValueError…)
            self._known_bad.add(index)
            self.log.record_bad(str(path), describe_failure(error))
            return None
        self.log.good()
        return image


def list_folder(root: Path, split: Split, holdout_size: int) -> FolderListing:
    """`root/train` + `root/test` (or `root/val`, as ImageNet has) when both exist, else a
    deterministic hash holdout of `root`."""
    if not root.is_dir():
        raise DatasetNotFoundError(
            f"image folder {root} does not exist; pass an existing "
            "directory with --set data.root=DIR"
        )
    test_name = next((name for name in ("test", "val") if (root / name).is_dir()), None)
    if (root / "train").is_dir() and test_name is not None:
        # Class names from both splits, so a class missing from one keeps its label.
        names = ("train", test_name)
        classes = sorted(
            {entry.name for name in names for entry in os.scandir(root / name) if entry.is_dir()}
        )
        directory = root / ("train" if split == "train" else test_name)
        listing = _list_tree(directory, tuple(classes))
        if not listing.files:
            raise DatasetNotFoundError(
                f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {directory}"
            )
        return listing
    listing = _list_tree(root)
    if not listing.files:
        raise DatasetNotFoundError(
            f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under "
            f"{root}; pass an image directory with --set data.root=DIR"
        )
    return _holdout(listing, root, split, holdout_size)


def _list_tree(root: Path, classes: tuple[str, ...] = ()) -> FolderListing:
    found: list[Path] = []
    empty: list[Path] = []
    for directory, subdirectories, names in os.walk(root, followlinks=True):
        subdirectories.sort()  # os.walk order is filesystem-dependent; sorting makes it stable
        for name in sorted(names):
            path = Path(directory) / name
            if name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if path.stat().st_size == 0:
                empty.append(path)
                continue
            found.append(path)
    if empty:
        warnings.warn(
            f"skipping {len(empty)} empty (0-byte) image files under {root}, e.g. {empty[0]}",
            BadImageWarning,
            stacklevel=2,
        )
    return _with_labels(root, found, tuple(empty), classes)


def _with_labels(
    root: Path, files: list[Path], empty: tuple[Path, ...], classes: tuple[str, ...]
) -> FolderListing:
    """ImageFolder labels if every image sits in a first-level subdirectory, else unlabelled.
    `classes` (sorted) names the classes when known beyond this tree (explicit split dirs)."""
    parts = [path.relative_to(root).parts for path in files]
    if files and all(len(part) > 1 for part in parts):
        class_names = classes or tuple(sorted({part[0] for part in parts}))
        index = {name: label for label, name in enumerate(class_names)}
        labels = tuple(index[part[0]] for part in parts)
        return FolderListing(tuple(files), labels, class_names, empty)
    return FolderListing(tuple(files), (-1,) * len(files), (), empty)


def _holdout(listing: FolderListing, root: Path, split: Split, holdout_size: int) -> FolderListing:
    # Rank files by a hash of their relative path: the split of a file does not depend on the
    # file system's order, classes are mixed in the test order, and the choice is reproducible.
    def rank(position: int) -> str:
        relative = listing.files[position].relative_to(root).as_posix()
        return hashlib.sha1(relative.encode()).hexdigest()

    order = sorted(range(len(listing.files)), key=rank)
    # Keep at least 80% for training, but give tiny folders a one-image test split.
    count = min(holdout_size, max(1, len(order) // 5)) if len(order) > 1 else 0
    chosen = order[:count] if split == "test" else sorted(order[count:])
    return FolderListing(
        files=tuple(listing.files[i] for i in chosen),
        labels=tuple(listing.labels[i] for i in chosen),
        class_names=listing.class_names,
        empty=listing.empty if split == "train" else (),
    )
