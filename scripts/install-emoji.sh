#!/usr/bin/env bash
# Installs the colour "emoji" dataset: Google's 64×64 RGBA emoji PNGs from the npm package
# `emoji-datasource-google` (MIT licence), sorted into one folder per emoji category so the
# folder loader sees class labels. Result: .cache/emoji/google-64/<Category>/<codepoints>.png
# (the default location of `--set data.name=emoji`). Needs npm (and tar); re-running is a no-op.
set -euo pipefail

VERSION="${EMOJI_VERSION:-16.0.0}"  # pinned so the image set (3,786 PNGs) is reproducible
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$REPO/.cache/emoji"
TARGET="$CACHE/google-64"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3

if [ -f "$TARGET/.complete" ]; then
  echo "emoji already installed in $TARGET"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "error: npm not found; install Node.js/npm (e.g. sudo apt-get install npm) and re-run," >&2
  echo "       or put your own images in a folder and pass --set data.root=DIR" >&2
  exit 1
fi

mkdir -p "$CACHE"
TARBALL="$CACHE/emoji-datasource-google-$VERSION.tgz"
if [ ! -f "$TARBALL" ]; then
  (cd "$CACHE" && npm pack --silent "emoji-datasource-google@$VERSION" >/dev/null)
fi

WORK="$(mktemp -d "$CACHE/extract.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
tar -xzf "$TARBALL" -C "$WORK" package/img/google/64 package/emoji.json package/LICENSE

# Sort PNGs by the category of their emoji (skin-tone variants join their base emoji).
"$PYTHON" - "$WORK/package" "$WORK/sorted" <<'EOF'
import json
import shutil
import sys
from pathlib import Path

package, out = Path(sys.argv[1]), Path(sys.argv[2])
category = {}
for emoji in json.loads((package / "emoji.json").read_text()):
    category[emoji["image"]] = emoji["category"]
    for variant in (emoji.get("skin_variations") or {}).values():
        category[variant["image"]] = emoji["category"]
for png in sorted((package / "img/google/64").glob("*.png")):
    folder = out / category.get(png.name, "Other")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.move(str(png), folder / png.name)
shutil.copy(package / "LICENSE", out / "LICENSE.txt")
EOF

rm -rf "$TARGET"
mv "$WORK/sorted" "$TARGET"
rm -f "$TARBALL"  # the extracted images are all we need
touch "$TARGET/.complete"
echo "emoji ready: $(find "$TARGET" -name '*.png' | wc -l) PNGs in $TARGET"
