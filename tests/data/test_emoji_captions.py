"""The emoji caption dataset: seeded captions, leak-free splits, the loader and bad files."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from tests.data.emoji_fixture import VENDOR_COLOURS, build_dataset
from unified_latents.data import emoji_captions, emoji_catalog
from unified_latents.data.containers import DataError, DatasetNotFoundError
from unified_latents.data.datasets import DataConfig, load_split
from unified_latents.data.decode import BadImageWarning
from unified_latents.data.emoji_captions import (
    CaptionConfig,
    compose_caption,
    load_emoji_captions,
)
from unified_latents.data.emoji_catalog import EmojiCatalog, EmojiEntry, split_images

SPLITS: tuple[emoji_catalog.EmojiSplit, ...] = ("train", "heldout-concepts", "heldout-vendor")


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_dataset(tmp_path_factory.mktemp("emoji"))


def test_caption_is_the_name_then_keywords_then_maybe_the_style() -> None:
    keywords = ("laugh", "lol", "cry", "tear")
    config = CaptionConfig(max_keywords=3, style_probability=0.5)
    seen_counts, styled = set(), 0
    for seed in range(200):
        caption = compose_caption(
            "face with tears of joy", keywords, "apple", random.Random(seed), config
        )
        parts = caption.split(", ")
        assert parts[0] == "face with tears of joy"
        has_style = parts[-1] == "in apple style"
        words = parts[1:-1] if has_style else parts[1:]
        assert set(words) <= set(keywords) and len(set(words)) == len(words) <= 3
        seen_counts.add(len(words))
        styled += has_style
    assert seen_counts == {0, 1, 2, 3}
    assert 60 < styled < 140  # style_probability 0.5 of 200
    plain = CaptionConfig(max_keywords=0, style_probability=0.0)
    assert compose_caption("cat face", keywords, "google", random.Random(0), plain) == "cat face"


def test_captions_are_deterministic_given_the_seed_and_vary_across_epochs(
    dataset_root: Path,
) -> None:
    first = load_emoji_captions(str(dataset_root), "train")
    again = load_emoji_captions(str(dataset_root), "train")
    reseeded = load_emoji_captions(str(dataset_root), "train", captions=CaptionConfig(seed=1))
    epochs = range(12)
    table = [[first.caption(i, epoch) for epoch in epochs] for i in range(len(first))]
    assert table == [[again.caption(i, epoch) for epoch in epochs] for i in range(len(again))]
    assert table != [[reseeded.caption(i, e) for e in epochs] for i in range(len(reseeded))]
    for index, captions in enumerate(table):
        if first.entry(index).keywords:
            assert len(set(captions)) >= 3, captions  # a new draw each epoch
    # An image's caption does not depend on the split's vendor set or order of access.
    google = load_emoji_captions(str(dataset_root), "train", vendors=("google",))
    by_key = {
        (first.entry(i).unified, first.vendor(i)): first.caption(i, 5) for i in range(len(first))
    }
    for index in reversed(range(len(google))):
        key = (google.entry(index).unified, google.vendor(index))
        if key in by_key:
            assert google.caption(index, 5) == by_key[key]


def _synthetic_catalog(num_concepts: int, vendors: tuple[str, ...]) -> EmojiCatalog:
    """Concepts with three variants each, in three categories, drawn by every vendor."""
    entries = tuple(
        EmojiEntry(
            unified=f"{concept:05X}-{variant}",
            concept=f"{concept:05X}",
            name=f"thing {concept} variant {variant}",
            keywords=(),
            category=f"category {concept % 3}",
            subcategory=f"sub {concept % 5}",
            images={vendor: f"{vendor}/{concept}-{variant}.png" for vendor in vendors},
        )
        for concept in range(num_concepts)
        for variant in range(3)
    )
    return EmojiCatalog(root=Path("unused"), vendors=vendors, entries=entries)


def test_heldout_concepts_are_whole_concepts_in_every_vendor() -> None:
    vendors = ("apple", "facebook", "google", "twitter")
    catalog = _synthetic_catalog(300, vendors)
    chosen = {split: split_images(catalog, vendors, split) for split in SPLITS}
    pairs = {
        split: {(catalog.entries[i].unified, v) for i, v in items}
        for split, items in chosen.items()
    }
    # The splits partition all images.
    assert sum(len(items) for items in chosen.values()) == 300 * 3 * len(vendors)
    assert sum(len(p) for p in pairs.values()) == len(set().union(*pairs.values()))

    def concepts(split: str) -> set[str]:
        return {catalog.entries[i].concept for i, _ in chosen[split]}

    unseen = concepts("heldout-concepts")
    assert not unseen & concepts("train") and not unseen & concepts("heldout-vendor")
    # A held-out concept is held out with every variant in every vendor's style.
    assert len(chosen["heldout-concepts"]) == len(unseen) * 3 * len(vendors)
    # 10% of each category's concepts (100 per category here).
    for category in range(3):
        in_category = {c for c in unseen if int(c, 16) % 3 == category}
        assert len(in_category) == round(emoji_catalog.HELDOUT_CONCEPT_FRACTION * 100)
    # Vendor hold-outs: seen concepts (their anchor vendor trains), never a whole concept.
    trained = {(catalog.entries[i].concept, v) for i, v in chosen["train"]}
    held = {(catalog.entries[i].concept, v) for i, v in chosen["heldout-vendor"]}
    assert held and not held & trained
    assert {concept for concept, _ in held} <= {concept for concept, _ in trained}
    assert {vendor for _, vendor in held} == set(vendors)
    expected = emoji_catalog.HELDOUT_VENDOR_FRACTION * (300 - len(unseen)) * (len(vendors) - 1)
    assert 0.6 * expected < len(held) < 1.4 * expected


def test_splits_are_fixed_by_the_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    vendors = ("google", "twitter")
    catalog = _synthetic_catalog(100, vendors)
    before = {split: split_images(catalog, vendors, split) for split in SPLITS}
    reversed_catalog = EmojiCatalog(catalog.root, vendors, catalog.entries[::-1])
    unseen = {catalog.entries[i].concept for i, _ in before["heldout-concepts"]}
    assert unseen == {
        reversed_catalog.entries[i].concept
        for i, _ in split_images(reversed_catalog, vendors, "heldout-concepts")
    }
    assert before == {split: split_images(catalog, vendors, split) for split in SPLITS}
    monkeypatch.setattr(emoji_catalog, "SPLIT_SEED", 1)
    other = {
        catalog.entries[i].concept for i, _ in split_images(catalog, vendors, "heldout-concepts")
    }
    assert other != unseen and len(other) == len(unseen)


def test_loader_yields_rgb_uint8_images_with_captions_and_labels(dataset_root: Path) -> None:
    for size in (64, 32):
        data = load_emoji_captions(str(dataset_root), "train", image_size=size)
        image, category = data[0]
        assert image.dtype == torch.uint8 and image.shape == (3, size, size)
        assert data.class_names[category] == data.entry(0).category
        example = data.example(0, epoch=3)
        assert torch.equal(example.image, image)
        assert example.caption == data.caption(0, 3)
        assert example.caption.startswith(data.entry(0).name)
        assert data.subcategory_names[example.subcategory] == data.entry(0).subcategory
    # Transparent pixels are composited on white; the vendor's colour fills the middle.
    assert image[:, 0, 0].tolist() == [255, 255, 255]
    assert tuple(image[:, 16, 16].tolist()) == VENDOR_COLOURS[example.vendor]
    rgba = load_emoji_captions(str(dataset_root), "train", image_size=16, keep_alpha=True)
    assert rgba[0][0].shape == (4, 16, 16)
    assert rgba[0][0][3, 0, 0] == 0 and rgba[0][0][3, 8, 8] == 255
    batch = next(iter(DataLoader(data.with_epoch(1), batch_size=4)))
    assert batch["image"].shape == (4, 3, 32, 32) and len(batch["caption"]) == 4
    assert batch["caption"] == [data.caption(i, 1) for i in range(4)]


def test_corrupt_png_is_skipped_and_named(tmp_path: Path) -> None:
    root = build_dataset(tmp_path)
    data = load_emoji_captions(str(root), "train", max_bad_fraction=0.5)
    broken = root / data.entry(0).images[data.vendor(0)]
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 8)
    with pytest.warns(BadImageWarning, match=str(broken.name)):
        example = data.example(0, epoch=0)
    # The next image stands in, with its own caption.
    assert example.unified == data.entry(1).unified and example.vendor == data.vendor(1)
    assert example.caption == data.caption(1, 0)
    assert data.bad_files == [str(broken)]
    strict = load_emoji_captions(str(root), "train", max_bad_fraction=0.0)
    with pytest.warns(BadImageWarning), pytest.raises(DataError, match=broken.name):
        strict[0]


def test_data_config_plugs_the_dataset_into_load_split(dataset_root: Path) -> None:
    config = DataConfig(name="emoji-captions", root=str(dataset_root), channels=3, image_size=64)
    train, test = load_split(config, "train"), load_split(config, "test")
    assert train.image_shape == (3, 64, 64) and train[0][0].shape == (3, 64, 64)
    heldout = load_emoji_captions(str(dataset_root), "heldout-concepts")
    assert len(test) == len(heldout)
    with pytest.raises(DataError, match=r"data\.channels=3"):
        load_split(DataConfig(name="emoji-captions", root=str(dataset_root)), "train")
    with pytest.raises(ValueError, match=r"data\.vendors"):
        DataConfig(name="emoji-captions", vendors=("openmoji",))
    partial = DataConfig(
        name="emoji-captions", root=str(dataset_root), channels=3, vendors=("facebook",)
    )
    with pytest.raises(DatasetNotFoundError, match=r"EMOJI_VENDORS=.*facebook"):
        load_split(partial, "train")


def test_missing_dataset_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(emoji_captions, "EMOJI_CAPTIONS_SUBDIR", Path("no/such/dir"))
    with pytest.raises(DatasetNotFoundError, match=r"install-emoji\.sh"):
        load_split(DataConfig(name="emoji-captions", channels=3), "train")
