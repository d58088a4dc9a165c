"""The installed emoji caption dataset's index (`emoji_index` writes it) and its fixed splits.

Splits (seed `SPLIT_SEED`, fractions below; deterministic, independent of file order):

- `heldout-concepts`: in every category, the `HELDOUT_CONCEPT_FRACTION` of concepts (an emoji
  with its skin tones, gender and direction variants; `emoji_index.concept_key`) ranked first by
  a seeded hash, in every vendor's style: concepts never seen in training. The choice does not
  depend on which vendors are installed.
- `heldout-vendor`: every remaining concept drawn by two or more selected vendors has an anchor
  vendor (chosen by a seeded hash), which stays in training; each other (concept, vendor) pair
  is held out (all its images) when a second seeded hash falls in the first
  `HELDOUT_VENDOR_FRACTION`: seen concepts in a style they were never seen in. Depends on
  the vendor set.
- `train`: everything else.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from unified_latents.data.containers import DataError, DatasetNotFoundError
from unified_latents.data.emoji_index import INDEX_FORMAT

EmojiSplit = Literal["train", "heldout-concepts", "heldout-vendor"]
SPLIT_SEED = 0
HELDOUT_CONCEPT_FRACTION = 0.1
HELDOUT_VENDOR_FRACTION = 0.1
INSTALL_HINT = "bash scripts/install-emoji.sh"


@dataclass(frozen=True)
class EmojiEntry:
    unified: str  # code points, e.g. "1F602"
    concept: str
    name: str
    keywords: tuple[str, ...]
    category: str
    subcategory: str
    images: dict[str, str]  # vendor → PNG path relative to the dataset root


@dataclass(frozen=True)
class EmojiCatalog:
    root: Path
    vendors: tuple[str, ...]  # installed image sets
    entries: tuple[EmojiEntry, ...]

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(sorted({entry.category for entry in self.entries}))

    @property
    def subcategories(self) -> tuple[str, ...]:
        return tuple(sorted({entry.subcategory for entry in self.entries}))


def read_catalog(root: Path) -> EmojiCatalog:
    """The index at `root/index.json` (raises with the install command when missing)."""
    path = root / "index.json"
    if not path.is_file():
        raise DatasetNotFoundError(
            f"emoji caption index {path} not found; install the dataset with `{INSTALL_HINT}` "
            "(needs npm), or pass --set data.root=DIR"
        )
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
        if index.get("format") != INDEX_FORMAT:
            raise ValueError(f"format {index.get('format')!r}, expected {INDEX_FORMAT}")
        entries = tuple(
            EmojiEntry(
                unified=str(item["unified"]),
                concept=str(item["concept"]),
                name=str(item["name"]),
                keywords=tuple(str(word) for word in item["keywords"]),
                category=str(item["category"]),
                subcategory=str(item["subcategory"]),
                images={str(vendor): str(file) for vendor, file in item["images"].items()},
            )
            for item in index["emoji"]
        )
        vendors = tuple(str(vendor) for vendor in index["vendors"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise DataError(
            f"{path} is not a valid emoji caption index ({type(error).__name__}: {error}); "
            f"delete {root} and re-run `{INSTALL_HINT}`"
        ) from None
    return EmojiCatalog(root=root, vendors=vendors, entries=entries)


def select_vendors(catalog: EmojiCatalog, vendors: Sequence[str]) -> tuple[str, ...]:
    """The requested vendors (all installed ones when empty), checked against the install."""
    missing = [vendor for vendor in vendors if vendor not in catalog.vendors]
    if missing:
        raise DatasetNotFoundError(
            f"emoji vendor(s) {', '.join(missing)} not installed in {catalog.root} (installed: "
            f"{', '.join(catalog.vendors) or 'none'}); install them with "
            f"`EMOJI_VENDORS={','.join(sorted({*catalog.vendors, *missing}))} {INSTALL_HINT}`"
        )
    return tuple(dict.fromkeys(vendors)) if vendors else catalog.vendors


def heldout_concepts(entries: Sequence[EmojiEntry]) -> frozenset[str]:
    """The concepts of the `heldout-concepts` split, stratified by category."""
    by_category: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        by_category[entry.category].add(entry.concept)
    chosen: set[str] = set()
    for concepts in by_category.values():
        # Rounded, but at least one of two or more (no effect on the real categories, ≥ 5
        # concepts each; gives small test catalogues a held-out split).
        count = int(HELDOUT_CONCEPT_FRACTION * len(concepts) + 0.5)
        count = max(count, 1) if len(concepts) >= 2 else 0
        chosen.update(sorted(concepts, key=lambda concept: _rank(concept))[:count])
    return frozenset(chosen)


def heldout_vendor_pairs(
    entries: Sequence[EmojiEntry], vendors: Sequence[str], unseen: frozenset[str]
) -> frozenset[tuple[str, str]]:
    """The (concept, vendor) pairs of the `heldout-vendor` split."""
    drawn_by: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        if entry.concept not in unseen:
            drawn_by[entry.concept].update(vendor for vendor in entry.images if vendor in vendors)
    limit = HELDOUT_VENDOR_FRACTION * 2.0**64
    pairs: set[tuple[str, str]] = set()
    for concept, drawn in drawn_by.items():
        if len(drawn) < 2:
            continue
        anchor = min(drawn, key=lambda vendor: _rank("anchor", concept, vendor))
        pairs.update(
            (concept, vendor)
            for vendor in drawn
            if vendor != anchor and _rank(concept, vendor) < limit
        )
    return frozenset(pairs)


def split_images(
    catalog: EmojiCatalog, vendors: Sequence[str], split: EmojiSplit
) -> list[tuple[int, str]]:
    """(entry index, vendor) of every image in `split`: train in index order, the held-out
    splits in seeded-hash order (so any prefix mixes categories and vendors)."""
    unseen = heldout_concepts(catalog.entries)
    held_pairs = heldout_vendor_pairs(catalog.entries, vendors, unseen)
    chosen = []
    for index, entry in enumerate(catalog.entries):
        for vendor in vendors:
            if vendor not in entry.images:
                continue
            if entry.concept in unseen:
                where = "heldout-concepts"
            elif (entry.concept, vendor) in held_pairs:
                where = "heldout-vendor"
            else:
                where = "train"
            if where == split:
                chosen.append((index, vendor))
    if split != "train":
        chosen.sort(key=lambda item: _rank(catalog.entries[item[0]].unified, item[1]))
    return chosen


def _rank(*parts: str) -> int:
    """A seeded 64-bit hash, stable across processes and Python versions."""
    text = "\0".join((str(SPLIT_SEED), *parts))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
