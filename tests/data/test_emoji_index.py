"""Building the emoji caption index from (miniature) npm packages, and reading it back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.data.emoji_fixture import EMOJI, build_dataset
from unified_latents.data.containers import DataError, DatasetNotFoundError
from unified_latents.data.emoji_catalog import read_catalog
from unified_latents.data.emoji_index import build_index, concept_key, lookup_key


def test_concept_key_groups_skin_tone_gender_and_direction_variants() -> None:
    running = {
        "1F3C3",  # person running
        "1F3C3-1F3FD",  # person running: medium skin tone
        "1F3C3-200D-2640-FE0F",  # woman running
        "1F3C3-1F3FF-200D-2642-FE0F",  # man running: dark skin tone
        "1F3C3-200D-2640-FE0F-200D-27A1-FE0F",  # woman running facing right
    }
    assert {concept_key(unified) for unified in running} == {"1F3C3"}
    cooks = {"1F9D1-200D-1F373", "1F468-200D-1F373", "1F469-1F3FB-200D-1F373"}
    assert {concept_key(unified) for unified in cooks} == {"1F9D1-200D-1F373"}
    # Different ideas stay apart; the female sign on its own is an emoji, not a modifier.
    assert concept_key("2640-FE0F") == "2640"
    assert concept_key("1F3FD") == "1F3FD"  # the skin tone swatch itself
    assert concept_key("1F431") != concept_key("1F436")
    assert concept_key("1F468") == concept_key("1F469") == "1F9D1"
    assert lookup_key("2764-fe0f") == "2764"


def test_index_has_one_entry_per_emoji_and_only_each_vendors_own_images(tmp_path: Path) -> None:
    root = build_dataset(tmp_path)
    index = json.loads((root / "index.json").read_text())
    num_variants = sum(len(emoji.get("skin_variations", {})) for emoji in EMOJI)
    assert len(index["emoji"]) == len(EMOJI) + num_variants
    assert index["vendors"] == ["apple", "google", "twitter"]
    by_unified = {entry["unified"]: entry for entry in index["emoji"]}
    # emoji.json says apple has no cat, although a file of that name exists in the package.
    assert set(by_unified["1F431"]["images"]) == {"google", "twitter"}
    assert not (root / "apple" / "1f431.png").exists()
    for entry in index["emoji"]:
        for vendor, relative in entry["images"].items():
            assert relative.startswith(f"{vendor}/") and (root / relative).is_file()
    # The three runners and the waving hands are one concept each.
    assert {by_unified[u]["concept"] for u in ("1F3C3", "1F3C3-200D-2640-FE0F")} == {"1F3C3"}
    assert {by_unified[u]["concept"] for u in ("1F44B", "1F44B-1F3FF")} == {"1F44B"}


def test_names_and_keywords_come_from_cldr_emojibase_and_short_names(tmp_path: Path) -> None:
    catalog = read_catalog(build_dataset(tmp_path))
    entries = {entry.unified: entry for entry in catalog.entries}
    joy = entries["1F602"]
    assert joy.name == "face with tears of joy"  # CLDR's name, not emoji.json's upper case
    # Union of CLDR and emojibase keywords, without repeats or words already in the name.
    assert joy.keywords == ("laugh", "lol", "cry", "tear")
    assert entries["1F600"].keywords == ("grin", "smile")  # emojibase only
    assert entries["1F436"].keywords == ("pet", "Puppy")  # case-insensitive repeats dropped
    # Skin tones: CLDR's derived annotations, else emojibase's skin label.
    assert entries["1F44B-1F3FF"].name == "waving hand: dark skin tone"
    assert entries["1F44B-1F3FB"].name == "waving hand: light skin tone"
    # ZWJ sequence matched through CLDR's FE0F-less key; no annotation → emoji.json's name.
    assert entries["1F3C3-200D-2640-FE0F"].name == "woman running"
    assert entries["1F3C3-200D-2642-FE0F"].name == "man running"
    assert entries["1F3C3"].keywords == ("marathon", "runner")  # "runner" from short_names
    assert entries["1F44B-1F3FF"].category == "People & Body"  # inherited from the base emoji


def test_unknown_vendor_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown emoji vendors"):
        build_index(tmp_path / "emoji.json", {}, {"openmoji": tmp_path}, tmp_path)


def test_missing_or_corrupt_index_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"install-emoji\.sh"):
        read_catalog(tmp_path)
    (tmp_path / "index.json").write_text('{"format": 1, "vendors": ["google"]')
    with pytest.raises(DataError, match=r"not a valid emoji caption index.*re-run") as error:
        read_catalog(tmp_path)
    assert "\n" not in str(error.value)
    (tmp_path / "index.json").write_text('{"format": 99, "vendors": [], "emoji": []}')
    with pytest.raises(DataError, match="format 99"):
        read_catalog(tmp_path)
