"""A miniature copy of the npm packages the emoji caption dataset is built from: an emoji.json,
an emojibase data.json, CLDR annotations and a few tiny RGBA PNGs per vendor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from tests.data.synthetic import image_bytes
from unified_latents.data.emoji_index import build_index, read_annotations

VENDOR_COLOURS = {"google": (255, 0, 0), "twitter": (0, 0, 255), "apple": (0, 160, 0)}
ALL_VENDORS = {f"has_img_{vendor}": True for vendor in VENDOR_COLOURS}


def _emoji(unified: str, name: str, category: str, subcategory: str, **extra: Any) -> dict:
    return {
        "name": name,
        "unified": unified,
        "image": f"{unified.lower()}.png",
        "short_names": [name.lower().replace(" ", "_")],
        "category": category,
        "subcategory": subcategory,
        **ALL_VENDORS,
        **extra,
    }


EMOJI = [
    _emoji("1F602", "FACE WITH TEARS OF JOY", "Smileys & Emotion", "face-smiling"),
    _emoji("1F600", "GRINNING FACE", "Smileys & Emotion", "face-smiling"),
    _emoji("1F431", "CAT FACE", "Animals & Nature", "animal-mammal", has_img_apple=False),
    _emoji("1F436", "DOG FACE", "Animals & Nature", "animal-mammal"),
    _emoji(
        "1F44B",
        "WAVING HAND SIGN",
        "People & Body",
        "hand-fingers-open",
        skin_variations={
            "1F3FB": {"unified": "1F44B-1F3FB", "image": "1f44b-1f3fb.png", **ALL_VENDORS},
            "1F3FF": {"unified": "1F44B-1F3FF", "image": "1f44b-1f3ff.png", **ALL_VENDORS},
        },
    ),
    _emoji("1F3C3", "RUNNER", "People & Body", "person-activity"),
    _emoji("1F3C3-200D-2640-FE0F", "WOMAN RUNNING", "People & Body", "person-activity"),
    _emoji("1F3C3-200D-2642-FE0F", "MAN RUNNING", "People & Body", "person-activity"),
]

EMOJIBASE = [
    {"label": "face with tears of joy", "hexcode": "1F602", "tags": ["laugh", "lol", "face"]},
    {"label": "grinning face", "hexcode": "1F600", "tags": ["grin", "smile"]},
    {"label": "cat face", "hexcode": "1F431", "tags": ["cat", "pet"]},
    {
        "label": "waving hand",
        "hexcode": "1F44B",
        "tags": ["wave", "hello"],
        "skins": [{"label": "waving hand: light skin tone", "hexcode": "1F44B-1F3FB"}],
    },
]

CLDR = {
    "annotations": {
        "annotations": {
            "😂": {"default": ["cry", "joy", "tear", "laugh"], "tts": ["face with tears of joy"]},
            "🐶": {"default": ["dog", "pet", "Puppy", "puppy"], "tts": ["dog face"]},
            "🏃": {"default": ["marathon", "running"], "tts": ["person running"]},
        }
    }
}

CLDR_DERIVED = {
    "annotationsDerived": {
        "annotations": {
            "👋🏿": {"default": ["wave", "dark skin tone"], "tts": ["waving hand: dark skin tone"]},
            "🏃\u200d♀": {"default": ["marathon", "woman"], "tts": ["woman running"]},
        }
    }
}


def vendor_image(vendor: str) -> Image.Image:
    """16×16: the vendor's colour in the middle, a fully transparent border of 4 pixels."""
    image = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    image.paste((*VENDOR_COLOURS[vendor], 255), (4, 4, 12, 12))
    return image


def write_packages(root: Path) -> dict[str, Path]:
    """The unpacked packages, as install-emoji.sh leaves them; returns their paths."""
    root.mkdir(parents=True, exist_ok=True)
    paths = {
        "emoji_json": root / "emoji.json",
        "emojibase": root / "emojibase.json",
        "cldr": root / "cldr.json",
        "cldr_derived": root / "cldr-derived.json",
    }
    paths["emoji_json"].write_text(json.dumps(EMOJI))
    paths["emojibase"].write_text(json.dumps(EMOJIBASE))
    paths["cldr"].write_text(json.dumps(CLDR, ensure_ascii=False))
    paths["cldr_derived"].write_text(json.dumps(CLDR_DERIVED, ensure_ascii=False))
    files = [emoji["image"] for emoji in EMOJI]
    files += [v["image"] for emoji in EMOJI for v in emoji.get("skin_variations", {}).values()]
    for vendor in VENDOR_COLOURS:
        folder = root / "img" / vendor / "64"
        folder.mkdir(parents=True)
        for name in files:  # apple has a file for the cat too: has_img_apple=False must win
            (folder / name).write_bytes(image_bytes(vendor_image(vendor), "PNG"))
        paths[vendor] = folder
    return paths


def build_dataset(root: Path, vendors: tuple[str, ...] = tuple(VENDOR_COLOURS)) -> Path:
    """The built dataset directory (index.json and PNGs) under `root/dataset`."""
    packages = write_packages(root / "packages")
    annotations = read_annotations(
        packages["emojibase"], [packages["cldr"], packages["cldr_derived"]]
    )
    out = root / "dataset"
    out.mkdir()
    images = {vendor: packages[vendor] for vendor in vendors}
    build_index(packages["emoji_json"], annotations, images, out)
    return out
