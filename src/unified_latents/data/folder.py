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
    Split,
    derived_seed,
)
from unified_latents.data.decode import (
    IMAGE_SUFFIXES,
    BadFileLog,
    BadImageWarning,
    LazyImageDataset,
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


class FolderImages(LazyImageDataset):
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
            raise DataError("the image folder split is empty; add images")
        self.files = listing.files
        self.labels = listing.labels
        self.class_names = listing.class_names
        self.image_size, self.channels = image_size, channels
        self.image_shape = (channels, image_size, image_size)
        self.log = BadFileLog(max_bad_fraction, total=len(listing.files) + len(listing.empty))
        self.log.add_known([str(path) for path in listing.empty])
        self.random_crop_min_area = random_crop_min_area
        self.epoch_indexed = random_crop_min_area > 0.0  # read by data/stream.py

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        epoch = 0
        if self.epoch_indexed and index >= 0:
            epoch, index = divmod(index, len(self.files))
        if not 0 <= index < len(self.files):
            raise IndexError(f"index {index} out of range for {len(self.files)} images")
        found = self.log.first_readable(
            index, len(self.files), lambda candidate: self._decode(candidate, epoch)
        )
        if found is None:
            raise DataError("no image in the folder split can be decoded")
        candidate, image = found
        return image, self.labels[candidate]

    def _decode(self, index: int, epoch: int = 0) -> Tensor | None:
        path = self.files[index]
        crop = None
        if self.random_crop_min_area > 0.0:
            seed, min_area = derived_seed(epoch, index), self.random_crop_min_area

            def crop(width: int, height: int) -> tuple[int, int, int]:
                return random_square(width, height, seed, min_area)

        return self.log.read(
            index,
            str(path),
            lambda: decode_image(path, self.image_size, self.channels, crop),
            describe_failure,
        )


@dataclass(frozen=True)
class SplitLayout:
    """Where one split's files are, in the layout image and video folders share: `root/train`
    or `root/test` (or `root/val`, as ImageNet has) with the class names of both, when `root`
    holds both splits; else `root` itself, which a hash holdout divides (`holdout`)."""

    directory: Path
    class_names: tuple[str, ...] = ()  # () when the labels come from `directory` alone
    holdout: bool = False


def split_layout(root: Path, split: Split) -> SplitLayout:
    """The layout of `split` under `root` (see `SplitLayout`)."""
    test_name = next((name for name in ("test", "val") if (root / name).is_dir()), None)
    if not (root / "train").is_dir() or test_name is None:
        return SplitLayout(root, holdout=True)
    # Class names from both splits, so a class missing from one keeps its label.
    names = ("train", test_name)
    classes = sorted(
        {entry.name for name in names for entry in os.scandir(root / name) if entry.is_dir()}
    )
    return SplitLayout(root / ("train" if split == "train" else test_name), tuple(classes))


def list_folder(root: Path, split: Split, holdout_size: int) -> FolderListing:
    """`root/train` + `root/test` (or `root/val`, as ImageNet has) when both exist, else a
    deterministic hash holdout of `root`."""
    if root.exists() and not root.is_dir():
        raise DatasetNotFoundError(
            f"image folder {root} is a file, not a directory; pass the directory that holds "
            "the images with --set data.root=DIR"
        )
    if not root.is_dir():
        raise DatasetNotFoundError(
            f"image folder {root} does not exist; pass an existing "
            "directory with --set data.root=DIR"
        )
    layout = split_layout(root, split)
    listing = _list_tree(layout.directory, layout.class_names)
    if not listing.files:
        hint = "; pass an image directory with --set data.root=DIR" if layout.holdout else ""
        raise DatasetNotFoundError(
            f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {layout.directory}{hint}"
        )
    return _holdout(listing, root, split, holdout_size) if layout.holdout else listing


def _list_tree(root: Path, classes: tuple[str, ...] = ()) -> FolderListing:
    found, empty, revisited = _walk_once(root)
    if revisited:
        warnings.warn(
            f"{len(revisited)} symbolic link(s) under {root} lead to a directory already "
            f"listed (a link loop or a duplicate), e.g. {revisited[0]}: each image is listed "
            "once",
            BadImageWarning,
            stacklevel=2,
        )
    if empty:
        warnings.warn(
            f"skipping {len(empty)} empty (0-byte) or dangling image files under {root}, e.g. "
            f"{empty[0]}",
            BadImageWarning,
            stacklevel=2,
        )
    return _with_labels(root, found, tuple(empty), classes)


def _walk_once(root: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """Image files under `root` (non-empty ones; empty or dangling ones) and the symbolic links
    not followed. Links are followed, but each real directory is entered once (a link back to
    an ancestor would repeat the tree forever) and each real file listed once (by device and
    inode: one image whatever links or hard links lead to it), under its own path when the
    walk meets that, else under the first link to it."""
    real_root = root.resolve()

    def unlinked(path: Path) -> bool:  # no symbolic link between the root and the file
        return Path(os.path.realpath(path)) == real_root / path.relative_to(root)

    chosen: dict[tuple[int, int], tuple[int, Path, int]] = {}  # → walk position, path, size
    dangling: list[Path] = []
    seen_dirs, revisited = {_identity(root)}, []
    for directory, subdirectories, names in os.walk(root, followlinks=True):
        here = Path(directory)
        entered = []
        # real subdirectories claim their identity before links do (of siblings `a -> z` and
        # `z`, `a` is the duplicate), in name order (os.walk's order depends on the system)
        for name in sorted(subdirectories, key=lambda name: ((here / name).is_symlink(), name)):
            try:
                identity = _identity(here / name)
            except OSError:  # unreadable: os.walk would skip it as well
                continue
            if identity in seen_dirs:
                revisited.append(here / name)
                continue
            seen_dirs.add(identity)
            entered.append(name)
        subdirectories[:] = sorted(entered)
        for name in sorted(names):
            path = here / name
            if name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                status = path.stat()
            except OSError:  # a dangling symbolic link
                dangling.append(path)
                continue
            key = (status.st_dev, status.st_ino)
            if key not in chosen or (not unlinked(chosen[key][1]) and unlinked(path)):
                chosen[key] = (len(chosen) + len(dangling), path, status.st_size)
    ordered = sorted(chosen.values())
    found = [path for _, path, size in ordered if size]
    return found, [path for _, path, size in ordered if not size] + dangling, revisited


def _identity(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_dev, status.st_ino


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
    # Rank files by a hash of their real path (symbolic links resolved) relative to the root:
    # the split of a file does not depend on the file system's order nor on the link it was
    # listed through, classes are mixed in the test order, and the choice is reproducible.
    real_root = root.resolve()

    def rank(position: int) -> str:
        real = listing.files[position].resolve()
        name = real.relative_to(real_root) if real.is_relative_to(real_root) else real
        return hashlib.sha1(name.as_posix().encode()).hexdigest()

    order = sorted(range(len(listing.files)), key=rank)
    if len(order) < 2 and split == "test":
        raise DataError(
            f"{root} holds {len(order)} usable image: too few to hold any out for the test "
            f"split (at least 2 needed); add images, or give {root}/train and {root}/test"
        )
    # Keep at least 80% for training, but give tiny folders a one-image test split.
    count = min(holdout_size, max(1, len(order) // 5)) if len(order) > 1 else 0
    chosen = order[:count] if split == "test" else sorted(order[count:])
    return FolderListing(
        files=tuple(listing.files[i] for i in chosen),
        labels=tuple(listing.labels[i] for i in chosen),
        class_names=listing.class_names,
        empty=listing.empty if split == "train" else (),
    )
