"""What every data source returns: the `ImageDataset` interface, the in-memory container that
small sources use, and the data errors the CLI reports without a traceback."""

from __future__ import annotations

import hashlib
from typing import Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset

Split = Literal["train", "test"]


class DataError(RuntimeError):
    """The data cannot be used as configured (corrupt files, too many bad images, bad settings)."""


class DatasetNotFoundError(DataError):
    """The data is not on this machine; the message says how to get it."""


class ImageDataset(Dataset[tuple[Tensor, int]]):
    """Items are `(image, label)`: uint8 [C, H, W] and an int (-1 when unlabelled).

    Map-style sources implement `__len__`/`__getitem__`; streamed sources (tar shards) are
    `torch.utils.data.IterableDataset`s as well and refuse indexing with a clear error.
    """

    class_names: tuple[str, ...] = ()
    image_shape: tuple[int, ...] = (1, 1, 1)  # [C, H, W]; [C, T, H, W] for clips

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        raise NotImplementedError


class InMemoryImages(ImageDataset):
    """A whole split as two tensors, so a batch is one indexing operation (no per-item Python)."""

    def __init__(self, images: Tensor, labels: Tensor, class_names: tuple[str, ...]) -> None:
        if images.dtype != torch.uint8 or images.dim() not in (4, 5):
            raise ValueError(
                "images must be uint8 [N, C, H, W] (or clips [N, C, T, H, W]), got "
                f"{images.dtype} {tuple(images.shape)}"
            )
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must be [{images.shape[0]}], got {tuple(labels.shape)}")
        self.images = images.contiguous()  # [N, C, H, W] (or [N, C, T, H, W]) uint8
        self.labels = labels.to(torch.int64)  # [N]
        self.class_names = class_names
        self.image_shape = tuple(int(size) for size in images.shape[1:])

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.images[index], int(self.labels[index])

    def subset(self, indices: Tensor) -> InMemoryImages:
        """The examples at `indices`, in that order (used to carve held-out splits)."""
        return InMemoryImages(self.images[indices], self.labels[indices], self.class_names)


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers (seed, epoch, rank, …) that is stable across processes and
    Python versions (unlike `hash`), so every rank and worker derives the same orders."""
    digest = hashlib.blake2b(repr(tuple(parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1
