"""Building the emoji caption dataset's index from the npm packages `scripts/install-emoji.sh`
unpacks: `emoji.json` (emoji-datasource: names, categories, which vendor has which image),
emojibase-data's `en/data.json` and CLDR's English annotations (names and keywords), and the
vendors' 64×64 RGBA PNGs. Nothing here downloads.

Output, in one directory: `index.json` (format below) and `<vendor>/<image>.png` for every image a
vendor really drew (`has_img_<vendor>`; emoji-datasource's individual PNGs contain no fallbacks).
One index entry per emoji, skin-tone variants included as their own entries::

    {"format": 1, "vendors": ["google", ...],
     "emoji": [{"unified": "1F602", "concept": "1F602", "name": "face with tears of joy",
                "keywords": ["crying", ...], "category": "Smileys & Emotion",
                "subcategory": "face-smiling", "images": {"google": "google/1f602.png"}}, ...]}

`concept` groups the variants of one idea (skin tones, man/woman/person, gender signs, facing
direction), so that held-out splits can hold out whole concepts (`emoji_catalog`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unified_latents.data.containers import DataError

INDEX_FORMAT = 1
VENDORS = ("google", "twitter", "apple", "facebook")  # emoji-datasource's image sets
_VARIATION_SELECTOR = "FE0F"
_ZWJ = "200D"
_SKIN_TONES = frozenset({"1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"})
# ZWJ suffixes that only change gender (♀ ♂) or direction (➡ "facing right"), not the concept.
_ZWJ_MODIFIERS = frozenset({"2640", "2642", "27A1"})
_PERSON = {"1F468": "1F9D1", "1F469": "1F9D1"}  # man, woman → person


@dataclass(frozen=True)
class Annotation:
    """An emoji's English name and keywords (lower case, as CLDR writes them)."""

    name: str
    keywords: tuple[str, ...]


def concept_key(unified: str) -> str:
    """The concept of an emoji sequence: without skin tones, variation selectors, gender signs
    or direction, and with man/woman read as person ("woman running: dark skin tone" and
    "person running" are one concept)."""
    parts = [part for part in unified.upper().split("-") if part != _VARIATION_SELECTOR]
    kept: list[str] = []
    for index, part in enumerate(parts):
        if part in _SKIN_TONES:
            continue
        if part == _ZWJ and index + 1 < len(parts) and parts[index + 1] in _ZWJ_MODIFIERS:
            continue
        if part in _ZWJ_MODIFIERS and index > 0 and parts[index - 1] == _ZWJ:
            continue  # the modifier whose ZWJ was dropped just above
        kept.append(_PERSON.get(part, part))
    return "-".join(kept) or lookup_key(unified)  # a skin tone swatch is its own concept


def lookup_key(unified: str) -> str:
    """The form in which emoji.json, emojibase and CLDR agree: upper-case hex, no FE0F."""
    return "-".join(part for part in unified.upper().split("-") if part != _VARIATION_SELECTOR)


def read_annotations(emojibase: Path, cldr_files: Sequence[Path]) -> dict[str, Annotation]:
    """Names and keywords by `lookup_key`: CLDR's text-to-speech name and keywords, united with
    emojibase's tags (and its label where CLDR has no entry)."""
    names: dict[str, str] = {}
    keywords: dict[str, list[str]] = {}
    for entry in _load_json(emojibase):
        for item in (entry, *entry.get("skins", ())):
            key = lookup_key(str(item["hexcode"]))
            names.setdefault(key, str(item["label"]))
            keywords.setdefault(key, []).extend(str(tag) for tag in item.get("tags", ()))
    for path in cldr_files:
        for character, annotation in _cldr_annotations(path).items():
            key = lookup_key("-".join(f"{ord(char):04X}" for char in character))
            if annotation.get("tts"):
                names[key] = str(annotation["tts"][0])  # CLDR's name wins over emojibase's
            keywords.setdefault(key, []).extend(str(word) for word in annotation.get("default", ()))
    return {
        key: Annotation(name, tuple(dict.fromkeys(keywords.get(key, ()))))
        for key, name in names.items()
    }


def _cldr_annotations(path: Path) -> dict[str, Any]:
    # cldr-json nests the table as {"annotations" | "annotationsDerived": {..., "annotations": {}}}
    document = _load_json(path)
    for top in ("annotations", "annotationsDerived"):
        if top in document:
            return dict(document[top]["annotations"])
    raise DataError(f"{path} is not a CLDR annotations file (no 'annotations' table)")


def iter_emoji(emoji_json: Path) -> Iterator[dict[str, Any]]:
    """emoji.json's entries with their skin variations flattened into entries of their own.
    Entries marked `obsoleted_by` stay: their artwork differs from their successor's (e.g. the
    neutral "person running" beside "man running"), and `concept_key` groups them."""
    for entry in _load_json(emoji_json):
        yield entry
        for variation in (entry.get("skin_variations") or {}).values():
            yield {
                **variation,
                "name": entry.get("name") or "",
                "short_names": entry.get("short_names") or [],
                "category": entry["category"],
                "subcategory": entry["subcategory"],
            }


def build_index(
    emoji_json: Path,
    annotations: Mapping[str, Annotation],
    images: Mapping[str, Path],
    out: Path,
) -> dict[str, Any]:
    """Copy each vendor's own PNGs from `images[vendor]` (the `img/<vendor>/64` folder) into
    `out/<vendor>/`, and write and return `out/index.json`."""
    unknown = sorted(set(images) - set(VENDORS))
    if unknown:
        raise DataError(f"unknown emoji vendors {unknown}; emoji-datasource has {VENDORS}")
    entries = []
    for emoji in iter_emoji(emoji_json):
        unified = str(emoji["unified"])
        annotation = annotations.get(lookup_key(unified))
        name = annotation.name if annotation else str(emoji["name"]).lower()
        words = list(annotation.keywords if annotation else ())
        words += [short.replace("_", " ") for short in emoji.get("short_names", ())]
        entries.append(
            {
                "unified": unified,
                "concept": concept_key(unified),
                "name": name,
                "keywords": _new_keywords(name, words),
                "category": str(emoji["category"]),
                "subcategory": str(emoji["subcategory"]),
                "images": _copy_images(emoji, images, out),
            }
        )
    index = {"format": INDEX_FORMAT, "vendors": sorted(images), "emoji": entries}
    (out / "index.json").write_text(json.dumps(index, ensure_ascii=False, indent=0) + "\n")
    return index


def _new_keywords(name: str, words: Sequence[str]) -> list[str]:
    """Keywords that add something to the name: not the name again, nor only its words."""
    name_words = set(_words(name))
    seen: set[str] = set()
    kept = []
    for word in words:
        if word.lower() not in seen and not set(_words(word)) <= name_words:
            kept.append(word)  # the first spelling of a keyword ("Dionysus" / "dionysus")
        seen.add(word.lower())
    return kept


def _words(text: str) -> list[str]:
    return text.lower().replace(":", " ").replace(",", " ").split()


def _copy_images(emoji: Mapping[str, Any], images: Mapping[str, Path], out: Path) -> dict[str, str]:
    copied = {}
    for vendor, folder in sorted(images.items()):
        source = folder / str(emoji["image"])
        if not emoji.get(f"has_img_{vendor}") or not source.is_file():
            continue
        relative = f"{vendor}/{emoji['image']}"
        (out / vendor).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, out / relative)
        copied[vendor] = relative
    return copied


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"cannot read {path}: {error}") from None
