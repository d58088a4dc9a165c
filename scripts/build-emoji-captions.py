"""Build the emoji caption dataset from unpacked npm packages (called by install-emoji.sh).

Usage: build-emoji-captions.py OUT EMOJI_JSON EMOJIBASE_JSON CLDR_JSON [CLDR_JSON ...]
           --images VENDOR=DIR [VENDOR=DIR ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unified_latents.data.emoji_index import build_index, read_annotations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("emoji_json", type=Path)
    parser.add_argument("emojibase", type=Path)
    parser.add_argument("cldr", type=Path, nargs="+")
    parser.add_argument("--images", nargs="+", required=True, metavar="VENDOR=DIR")
    args = parser.parse_args()
    pairs = (item.split("=", 1) for item in args.images)
    images = {vendor: Path(folder) for vendor, folder in pairs}
    annotations = read_annotations(args.emojibase, args.cldr)
    index = build_index(args.emoji_json, annotations, images, args.out)
    named = sum(1 for entry in index["emoji"] if entry["keywords"])
    print(f"indexed {len(index['emoji'])} emoji ({named} with keywords)")
    for vendor in index["vendors"]:
        count = sum(1 for entry in index["emoji"] if vendor in entry["images"])
        print(f"  {vendor}: {count} images")


if __name__ == "__main__":
    main()
