"""The emoji caption dataset: vendors' 64×64 emoji with captions composed from names and keywords.

`scripts/install-emoji.sh` builds it once under `.cache/emoji/captions/` (see `emoji_index`);
splits are fixed (`emoji_catalog`). Images are RGBA PNGs composited on white (uint8 [3, H, W]),
or kept as RGBA [4, H, W] with `keep_alpha=True`; `image_size` 64 is native, 32 (or any other
size) is one Lanczos resize.

Indexing (`dataset[i]`) gives `(image, category)` like every `ImageDataset`, so stage 1 trains on
it unchanged. Captions change every epoch: `example(i, epoch)` composes the name, a random
subset of at most `max_keywords` keywords in random order and, with `style_probability`, the
vendor's style ("face with tears of joy, laugh, lol, in twitter style"), from a generator
seeded by (caption seed, epoch, vendor, code points): deterministic given the seed, independent
of the split, the vendor set and the order of access. `with_epoch(epoch)` is the map-style view
a DataLoader batches (dicts with image, caption, category, subcategory).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from unified_latents.data.containers import DataError, DatasetNotFoundError
from unified_latents.data.decode import (
    BadFileLog,
    LazyImageDataset,
    decode_image,
    describe_failure,
    square_resize,
)
from unified_latents.data.emoji_catalog import (
    EmojiCatalog,
    EmojiEntry,
    EmojiSplit,
    read_catalog,
    select_vendors,
    split_images,
)

EMOJI_CAPTIONS_SUBDIR = Path(".cache/emoji/captions")  # where install-emoji.sh builds it
STYLE_NAMES = {"google": "google", "twitter": "twitter", "apple": "apple", "facebook": "facebook"}


@dataclass(frozen=True, kw_only=True)
class CaptionConfig:
    seed: int = 0
    max_keywords: int = 3  # keywords per caption: uniform in 0..min(max_keywords, available)
    style_probability: float = 0.5  # chance that a caption names the vendor's style

    def __post_init__(self) -> None:
        if self.max_keywords < 0:
            raise ValueError(f"max_keywords must be ≥ 0, got {self.max_keywords}")
        if not 0.0 <= self.style_probability <= 1.0:
            raise ValueError(f"style_probability must be in [0, 1], got {self.style_probability}")


@dataclass(frozen=True)
class EmojiExample:
    image: Tensor  # uint8 [C, H, W]
    caption: str
    category: int  # index into EmojiCaptions.class_names
    subcategory: int  # index into EmojiCaptions.subcategory_names
    unified: str  # code points, e.g. "1F602"
    vendor: str


def style_phrase(vendor: str) -> str:
    return f"in {STYLE_NAMES.get(vendor, vendor)} style"


def compose_caption(
    name: str, keywords: Sequence[str], vendor: str, rng: random.Random, config: CaptionConfig
) -> str:
    """name, then a random subset of keywords in random order, then maybe the vendor's style."""
    count = rng.randint(0, min(config.max_keywords, len(keywords)))
    parts = [name, *rng.sample(list(keywords), count)]
    if rng.random() < config.style_probability:
        parts.append(style_phrase(vendor))
    return ", ".join(parts)


def caption_rng(seed: int, epoch: int, vendor: str, unified: str) -> random.Random:
    """The generator of one image's caption in one epoch."""
    text = f"{seed}\0{epoch}\0{vendor}\0{unified}"
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


class EmojiCaptions(LazyImageDataset):
    """One split's images, decoded lazily; undecodable PNGs are warned about (named), counted
    against `max_bad_fraction` and replaced by the next decodable image, like `FolderImages`."""

    def __init__(
        self,
        catalog: EmojiCatalog,
        images: Sequence[tuple[int, str]],
        *,
        image_size: int,
        channels: int,
        keep_alpha: bool,
        captions: CaptionConfig,
        max_bad_fraction: float,
    ) -> None:
        """Built by `load_emoji_captions`, whose defaults the settings have."""
        if not images:
            raise DataError("the emoji caption split is empty for the selected vendors")
        self.catalog, self.images = catalog, tuple(images)
        self.image_size, self.channels, self.keep_alpha = image_size, channels, keep_alpha
        self.captions = captions
        self.class_names = catalog.categories
        self.subcategory_names = catalog.subcategories
        self._category = {name: label for label, name in enumerate(self.class_names)}
        self._subcategory = {name: label for label, name in enumerate(self.subcategory_names)}
        self.image_shape = (4 if keep_alpha else channels, image_size, image_size)
        self.log = BadFileLog(max_bad_fraction, total=len(self.images))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        position, image = self._resolve(index)
        return image, self._category[self.entry(position).category]

    def entry(self, index: int) -> EmojiEntry:
        return self.catalog.entries[self.images[index][0]]

    def vendor(self, index: int) -> str:
        return self.images[index][1]

    def caption(self, index: int, epoch: int) -> str:
        """Image `index`'s caption in `epoch` (of that image itself, decodable or not)."""
        entry, vendor = self.entry(index), self.vendor(index)
        rng = caption_rng(self.captions.seed, epoch, vendor, entry.unified)
        return compose_caption(entry.name, entry.keywords, vendor, rng, self.captions)

    def concept(self, index: int) -> str:
        """The emoji's name: what image `index` shows, whatever the vendor."""
        return self.entry(index).name

    def fixed_caption(self, index: int) -> str:
        """A caption without randomness (name and style), for evaluation prompts."""
        return f"{self.entry(index).name}, {style_phrase(self.vendor(index))}"

    def example(self, index: int, epoch: int) -> EmojiExample:
        position, image = self._resolve(index)
        entry = self.entry(position)
        return EmojiExample(
            image=image,
            caption=self.caption(position, epoch),
            category=self._category[entry.category],
            subcategory=self._subcategory[entry.subcategory],
            unified=entry.unified,
            vendor=self.vendor(position),
        )

    def with_epoch(self, epoch: int) -> CaptionedEmoji:
        return CaptionedEmoji(self, epoch)

    def _resolve(self, index: int) -> tuple[int, Tensor]:
        """(position, image) of `index`, or of the next decodable image if it is unreadable."""
        if not 0 <= index < len(self.images):
            raise IndexError(f"index {index} out of range for {len(self.images)} images")
        found = self.log.first_readable(index, len(self.images), self._read)
        if found is None:
            raise DataError("no image in the emoji caption split can be decoded")
        return found

    def _read(self, position: int) -> Tensor | None:
        """Image `position`, or None (counted as bad) if it cannot be decoded."""
        path = self.catalog.root / self.entry(position).images[self.vendor(position)]
        return self.log.read(position, str(path), lambda: self._decode(path), describe_failure)

    def _decode(self, path: Path) -> Tensor:
        if not self.keep_alpha:
            return decode_image(path, self.image_size, self.channels)  # composited on white
        with Image.open(path) as opened:
            opened.load()
            rgba = opened.convert("RGBA")
        return square_resize(rgba, self.image_size)  # [4, H, W]


class CaptionedEmoji(Dataset[dict[str, Any]]):
    """`EmojiCaptions` with one epoch's captions: items are dicts that DataLoader collates."""

    def __init__(self, dataset: EmojiCaptions, epoch: int) -> None:
        self.dataset, self.epoch = dataset, epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        example = self.dataset.example(index, self.epoch)
        return {
            "image": example.image,
            "caption": example.caption,
            "category": example.category,
            "subcategory": example.subcategory,
        }


def emoji_captions_root(root: str) -> Path:
    """`root`, or where install-emoji.sh built the dataset (the working directory or checkout)."""
    if root:
        return Path(root)
    checkout = Path(__file__).resolve().parents[3]  # src/unified_latents/data/ → repository
    for base in (Path.cwd(), checkout):
        if (base / EMOJI_CAPTIONS_SUBDIR / "index.json").is_file():
            return base / EMOJI_CAPTIONS_SUBDIR
    raise DatasetNotFoundError(
        f"the emoji caption dataset is not in {EMOJI_CAPTIONS_SUBDIR}; install it with "
        "`bash scripts/install-emoji.sh` (needs npm), or pass --set data.root=DIR"
    )


def load_emoji_captions(
    root: str,
    split: EmojiSplit,
    *,
    vendors: Sequence[str] = (),
    image_size: int = 64,
    channels: int = 3,
    keep_alpha: bool = False,
    captions: CaptionConfig = CaptionConfig(),
    max_bad_fraction: float = 0.01,
) -> EmojiCaptions:
    """One split of the installed dataset; `vendors` empty means every installed vendor."""
    catalog = read_catalog(emoji_captions_root(root))
    chosen = select_vendors(catalog, vendors)
    images = split_images(catalog, chosen, split)
    if not images:
        needs = " (it needs two or more vendors)" if split == "heldout-vendor" else ""
        raise DataError(
            f"the emoji split {split!r} is empty for vendors {', '.join(chosen)}{needs}"
        )
    return EmojiCaptions(
        catalog,
        images,
        image_size=image_size,
        channels=channels,
        keep_alpha=keep_alpha,
        captions=captions,
        max_bad_fraction=max_bad_fraction,
    )
