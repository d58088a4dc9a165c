"""`BatchStream`: the infinite, seeded, rank-sharded and resumable training batches.

Map-style datasets: epoch e is the permutation drawn from (seed, e); rank r takes every
`world_size`-th index starting at r from the first `world_size · ⌊N / world_size⌋`, so ranks
are disjoint and equal-sized; the rank's share is cut into full batches (the remainder is
dropped). The position is (epoch, batch), so a restored stream yields exactly the batches the
saved one would have. In-memory data is batched by tensor indexing; lazily decoded data goes
through a DataLoader whose batch sampler starts at the saved position.

Streamed (tar) datasets cannot skip ahead without decoding everything before the position, so
a restored stream restarts its saved epoch from the beginning (batches repeat; none are lost).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from unified_latents.data.containers import DataError, ImageDataset, InMemoryImages, derived_seed
from unified_latents.data.shards import TarImages

if TYPE_CHECKING:  # only for the annotation: image training does not import the video reader
    from unified_latents.data.video_files import VideoClips

Batch = tuple[Tensor, Tensor]  # images uint8 [B, C, H, W] (clips [B, C, T, H, W]), labels [B]


class _Rows:
    """A batch sampler whose rows (lists of indices) the stream replaces at each epoch start;
    the DataLoader reads it in the main process, so persistent workers keep their state."""

    def __init__(self) -> None:
        self.rows: list[list[int]] = []

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


class BatchStream:
    """Infinite `(images, labels)` batches of one rank; `state_dict` holds plain ints."""

    def __init__(
        self,
        dataset: ImageDataset | VideoClips,
        *,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
    ) -> None:
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(
                f"invalid batch_size={batch_size}, rank={rank}, world_size={world_size}"
            )
        self.dataset = dataset
        self.batch_size, self.seed = batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.num_workers = num_workers
        self.streamed = isinstance(dataset, IterableDataset)
        self.num_examples = -1 if self.streamed else len(dataset)
        if not self.streamed and self.num_batches_per_epoch == 0:
            raise DataError(
                f"{self.num_examples} training images are too few for batches of "
                f"{batch_size} on {world_size} rank(s)"
            )
        self.epoch, self.batch = 0, 0
        self._rows = _Rows()
        self._loader: DataLoader[Any] | None = None
        self._iterator: Iterator[Batch] | None = None
        # This rank's rows of the current epoch, int64 [num_batches, batch_size]; None means
        # "(re)start at (epoch, batch)": at construction, after a restore, after an epoch.
        self._epoch_rows: Tensor | None = None

    @property
    def num_batches_per_epoch(self) -> int:
        """Batches per epoch on every rank (map-style datasets only)."""
        return (self.num_examples // self.world_size) // self.batch_size

    def epoch_batches(self, epoch: int) -> Tensor:
        """This rank's index rows for `epoch`: int64 [num_batches, batch_size]."""
        generator = torch.Generator().manual_seed(derived_seed(self.seed, epoch))
        permutation = torch.randperm(self.num_examples, generator=generator)
        usable = (self.num_examples // self.world_size) * self.world_size
        mine = permutation[self.rank : usable : self.world_size]
        count = self.num_batches_per_epoch * self.batch_size
        return mine[:count].view(-1, self.batch_size)

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> Batch:
        if self.streamed:
            return self._next_streamed()
        if self.batch == self.num_batches_per_epoch:
            self.epoch, self.batch = self.epoch + 1, 0
        if self._epoch_rows is None:
            self._start_epoch()
        assert self._epoch_rows is not None
        if isinstance(self.dataset, InMemoryImages):
            indices = self._epoch_rows[self.batch]
            batch = (self.dataset.images[indices], self.dataset.labels[indices])
        else:
            batch = self._next_from_loader()
        self.batch += 1
        if self.batch == self.num_batches_per_epoch:
            self._epoch_rows = None  # the next call starts a new epoch
        return batch

    def _start_epoch(self) -> None:
        """Rows of the current epoch from the current batch on (a fresh epoch or a resume)."""
        self._epoch_rows = self.epoch_batches(self.epoch)
        if isinstance(self.dataset, InMemoryImages):
            return
        rows = self._epoch_rows[self.batch :]
        if getattr(self.dataset, "epoch_indexed", False):
            # The dataset varies items by epoch (random crops): index = epoch · N + i.
            rows = rows + self.epoch * self.num_examples
        self._rows.rows = rows.tolist()
        if self._loader is None:
            self._loader = DataLoader(
                self.dataset,
                batch_sampler=self._rows,
                num_workers=self.num_workers,
                persistent_workers=self.num_workers > 0,
            )
        self._iterator = iter(self._loader)

    def _next_from_loader(self) -> Batch:
        batch = self._pull()
        assert batch is not None  # the sampler holds exactly the rest of the epoch
        return batch

    def _next_streamed(self) -> Batch:
        assert isinstance(self.dataset, TarImages)
        for _ in range(2):
            if self._iterator is None:
                shard_stream = self.dataset.configured(
                    seed=self.seed, epoch=self.epoch, rank=self.rank, world_size=self.world_size
                )
                loader = DataLoader(
                    shard_stream,
                    batch_size=self.batch_size,
                    drop_last=True,
                    num_workers=self.num_workers,
                )
                self._iterator = iter(loader)
            batch = self._pull()
            if batch is None:
                self.epoch, self.batch, self._iterator = self.epoch + 1, 0, None
                continue
            self.batch += 1
            return batch
        raise DataError(
            f"an epoch of the tar shards gave rank {self.rank} no full batch of "
            f"{self.batch_size}; use more data or a smaller batch"
        )

    def _pull(self) -> Batch | None:
        """The loader's next batch, or None at its end."""
        assert self._iterator is not None
        message = ""
        try:
            images, labels = next(self._iterator)
            return images, labels.to(torch.int64)
        except StopIteration:
            return None
        except DataError as error:
            message = _worker_message(error)
            # The traceback's frames and the error refer to each other; breaking that cycle
            # (and raising outside this handler) lets `close` free the loader at once, which
            # stops its workers now (a later garbage collection can stall for seconds).
            error.__traceback__ = None
        self.close()
        raise DataError(message)

    def close(self) -> None:
        """Stop DataLoader workers now (they also stop when the stream is freed)."""
        self._iterator, self._loader, self._epoch_rows = None, None, None

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch": self.batch, "num_examples": self.num_examples}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
        saved_examples = int(state.get("num_examples", self.num_examples))
        if self.streamed:
            self.batch = 0  # see the module docstring: streams restart the saved epoch
        elif saved_examples != self.num_examples:
            warnings.warn(
                f"the training set has {self.num_examples} images but the saved "
                f"stream had {saved_examples}; continuing at the start of epoch "
                f"{self.epoch}",
                stacklevel=2,
            )
            self.batch = 0
        self._iterator, self._epoch_rows = None, None


def _worker_message(error: DataError) -> str:
    """DataLoader re-raises worker errors with the worker's traceback in the message; keep
    only our own message, which already says what is wrong and what to do."""
    text = str(error)
    marker = f"{type(error).__name__}: "
    return text[text.rindex(marker) + len(marker) :].strip() if marker in text else text


class ImageBatches:
    """The `batches` of a training task (`training/task.py`) that trains on an image dataset:
    subclasses set `train_data` and `num_workers` (data loading processes, `data.num_workers`)."""

    train_data: ImageDataset
    num_workers: int = 0

    def batches(self, micro_batch_size: int, seed: int, rank: int, world_size: int) -> BatchStream:
        return BatchStream(
            self.train_data,
            batch_size=micro_batch_size,
            seed=seed,
            rank=rank,
            world_size=world_size,
            num_workers=self.num_workers,
        )
