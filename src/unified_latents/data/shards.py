"""WebDataset-style tar shards: members sharing a key (`dir/name` up to the first dot of the
basename) form one sample; the image is the `jpg`/`jpeg`/`png`/`webp` member and the label the
optional `cls` member (a decimal integer). An optional `classes.txt` beside the shards names
the classes, one per line.

The training split is streamed (`TarImages`, an `IterableDataset`): each epoch visits the
shards in a seeded order; with at least as many shards as consumers (ranks × DataLoader
workers) each consumer reads its own shards, otherwise every consumer reads every shard and
keeps every n-th sample. A seeded shuffle buffer mixes samples across shard boundaries.
Undecodable images are skipped, warned about and counted per consumer (`BadFileLog` without a
known total: judged over large samples and at the end of each pass).

Splits: `root/train/*.tar` + `root/test/*.tar` when both exist; otherwise the first
`holdout_size` samples of the last shard (at most a fifth of it when there is one shard) are
held out. The test split is small and indexed by evaluation code, so it is loaded in memory.
"""

from __future__ import annotations

import copy
import glob
import itertools
import random
import tarfile
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import IterableDataset, get_worker_info

from unified_latents.data.containers import (
    DatasetNotFoundError,
    ImageDataset,
    InMemoryImages,
    Split,
    derived_seed,
)
from unified_latents.data.decode import BadFileLog, decode_image, describe_failure

Sample = dict[str, bytes]  # extension → member bytes
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
SHUFFLE_BUFFER = 256  # decoded samples held for shuffling; bounded memory, good local mixing


class TarImages(IterableDataset[tuple[Tensor, int]], ImageDataset):
    """Streams (image, label) from tar shards; `configured` sets seed/epoch/rank (a copy)."""

    def __init__(
        self,
        shards: tuple[Path, ...],
        *,
        image_size: int,
        channels: int,
        max_bad_fraction: float,
        class_names: tuple[str, ...],
        skip_first: int = 0,
    ) -> None:
        self.shards = shards
        self.skip_first = skip_first  # samples at the start of the last shard held out as test
        self.image_size, self.channels = image_size, channels
        self.max_bad_fraction = max_bad_fraction
        self.class_names = class_names
        self.image_shape = (channels, image_size, image_size)
        self.seed, self.epoch, self.rank, self.world_size = 0, 0, 0, 1

    def configured(self, *, seed: int, epoch: int, rank: int, world_size: int) -> TarImages:
        stream = copy.copy(self)
        stream.seed, stream.epoch, stream.rank, stream.world_size = seed, epoch, rank, world_size
        return stream

    def __len__(self) -> int:
        raise TypeError("tar shards are streamed and have no length; iterate over them")

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        raise TypeError("tar shards are streamed and cannot be indexed; iterate over them")

    def __iter__(self) -> Iterator[tuple[Tensor, int]]:
        worker = get_worker_info()
        worker_id, num_workers = (worker.id, worker.num_workers) if worker else (0, 1)
        consumer = self.rank * num_workers + worker_id
        num_consumers = self.world_size * num_workers
        rng = random.Random(derived_seed(self.seed, self.epoch, consumer))
        return _shuffled(self._decoded(consumer, num_consumers), rng, SHUFFLE_BUFFER)

    def _decoded(self, consumer: int, num_consumers: int) -> Iterator[tuple[Tensor, int]]:
        order = torch.randperm(
            len(self.shards),
            generator=torch.Generator().manual_seed(derived_seed(self.seed, self.epoch)),
        )
        by_shard = len(self.shards) >= num_consumers
        mine = order[consumer::num_consumers] if by_shard else order
        log = BadFileLog(self.max_bad_fraction)
        count = 0  # samples seen across my shards, for the sample-level split
        for shard_index in mine.tolist():
            skip = self.skip_first if shard_index == len(self.shards) - 1 else 0
            for position, (key, sample) in enumerate(read_samples(self.shards[shard_index], log)):
                if position < skip:
                    continue
                count += 1
                if not by_shard and (count - 1) % num_consumers != consumer:
                    continue
                item = decode_sample(key, sample, self.image_size, self.channels, log)
                if item is not None:
                    yield item
        log.finish()


def _shuffled(
    items: Iterator[tuple[Tensor, int]], rng: random.Random, size: int
) -> Iterator[tuple[Tensor, int]]:
    buffer: list[tuple[Tensor, int]] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        slot = rng.randrange(size)
        yield buffer[slot]
        buffer[slot] = item
    rng.shuffle(buffer)
    yield from buffer


def read_samples(shard: Path, log: BadFileLog) -> Iterator[tuple[str, Sample]]:
    """(key, {extension: bytes}) for consecutive members sharing a key, in archive order."""
    key, sample = "", Sample()
    try:
        with tarfile.open(shard, mode="r|*") as archive:
            for member in archive:
                extracted = archive.extractfile(member) if member.isfile() else None
                if extracted is None:
                    continue
                member_key, extension = _split_name(member.name)
                if member_key != key and sample:
                    yield key, sample
                    sample = Sample()
                key = member_key
                sample[extension] = extracted.read()
    except (tarfile.TarError, OSError, EOFError) as error:
        # A truncated shard still yields the samples before the damage.
        log.record_bad(str(shard), f"unreadable tar archive ({describe_failure(error)})")
    else:
        if not _has_end_marker(shard):
            log.record_bad(str(shard), "truncated tar archive (no end-of-archive marker)")
    if sample:
        yield key, sample


def _has_end_marker(shard: Path) -> bool:
    """Whether an uncompressed tar ends in the two zero blocks every writer appends; tarfile
    stops silently when a shard is cut exactly at a member boundary, so check explicitly."""
    if shard.suffix != ".tar" or not shard.is_file():
        return True  # compressed: a cut stream already raises while decompressing
    with open(shard, "rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(0, size - 1024))
        return size % 512 == 0 and not any(handle.read())


def _split_name(name: str) -> tuple[str, str]:
    directory, _, basename = name.rpartition("/")
    stem, _, extension = basename.partition(".")
    return (f"{directory}/{stem}" if directory else stem), extension.lower()


def decode_sample(
    key: str, sample: Sample, image_size: int, channels: int, log: BadFileLog
) -> tuple[Tensor, int] | None:
    """The sample's image and label, or None (counted as bad) when it cannot be decoded."""
    extension = next((ext for ext in IMAGE_EXTENSIONS if ext in sample), None)
    if extension is None:
        return None  # not an image sample (e.g. metadata only): nothing to count
    try:
        image = decode_image(sample[extension], image_size, channels)
        label = int(sample["cls"].decode().strip()) if "cls" in sample else -1
    except Exception as error:  # PIL raises many types; a bad .cls raises ValueError
        log.record_bad(f"{key}.{extension}", describe_failure(error))
        return None
    log.good()
    return image, label


def find_shards(root: str, split: Split) -> tuple[tuple[Path, ...], bool]:
    """The split's shards and whether they are a dedicated split (vs. a holdout to carve)."""
    base = Path(root)
    if any(char in root for char in "*?["):
        shards = tuple(Path(path) for path in sorted(glob.glob(root)))
        dedicated = False
    elif (base / "train").is_dir() and (base / "test").is_dir():
        shards, dedicated = tuple(sorted((base / split).glob("*.tar"))), True
    else:
        shards, dedicated = tuple(sorted(base.glob("*.tar"))), False
    if not shards:
        raise DatasetNotFoundError(
            f"no *.tar shards found at {root!r}; pass a directory of "
            "shards or a glob with --set data.root=..."
        )
    return shards, dedicated


def class_names_near(shards: tuple[Path, ...]) -> tuple[str, ...]:
    for directory in (shards[0].parent, shards[0].parent.parent):
        names = directory / "classes.txt"
        if names.is_file():
            return tuple(line.strip() for line in names.read_text().splitlines() if line.strip())
    return ()


def count_samples(shard: Path) -> int:
    """Samples in one shard (reads headers and member bytes; used once, for the holdout size)."""
    log = BadFileLog(1.0)
    return sum(1 for _ in read_samples(shard, log))


def load_tar(
    root: str,
    split: Split,
    *,
    image_size: int,
    channels: int,
    holdout_size: int,
    max_bad_fraction: float,
) -> ImageDataset:
    shards, dedicated = find_shards(root, split)
    names = class_names_near(shards)
    if dedicated:
        train_shards, skip_first, test_shards, test_count = shards, 0, shards, holdout_size
    else:
        train_shards, skip_first, test_shards, test_count = _carve_holdout(shards, holdout_size)
    if split == "test":
        return _load_test(test_shards, test_count, image_size, channels, max_bad_fraction, names)
    return TarImages(
        train_shards,
        image_size=image_size,
        channels=channels,
        max_bad_fraction=max_bad_fraction,
        class_names=names,
        skip_first=skip_first,
    )


def _carve_holdout(
    shards: tuple[Path, ...], holdout_size: int
) -> tuple[tuple[Path, ...], int, tuple[Path, ...], int]:
    """(train shards, samples the train stream skips at the start of its last shard, test
    shards, test samples): the test split is the head of the last shard."""
    in_last = count_samples(shards[-1])
    count = min(holdout_size, in_last // 5 if len(shards) == 1 else in_last)
    if count == in_last:  # the whole last shard is held out: train leaves it out entirely
        return shards[:-1], 0, shards[-1:], count
    return shards, count, shards[-1:], count


def _load_test(
    shards: tuple[Path, ...],
    count: int,
    image_size: int,
    channels: int,
    max_bad_fraction: float,
    names: tuple[str, ...],
) -> InMemoryImages:
    """The first `count` samples of `shards`, decoded into memory (bad ones skipped)."""
    log = BadFileLog(max_bad_fraction)
    images: list[Tensor] = []
    labels: list[int] = []
    samples = itertools.chain.from_iterable(read_samples(shard, log) for shard in shards)
    for key, sample in itertools.islice(samples, count):
        item = decode_sample(key, sample, image_size, channels, log)
        if item is not None:
            images.append(item[0])
            labels.append(item[1])
    log.finish()
    if not images:
        raise DatasetNotFoundError(
            f"the tar test split ({', '.join(map(str, shards))}) has no decodable images"
        )
    return InMemoryImages(torch.stack(images), torch.tensor(labels, dtype=torch.long), names)
