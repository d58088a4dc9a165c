#!/usr/bin/env bash
# Installs the default dataset (Fashion-MNIST, Debian package `dataset-fashion-mnist`) where apt
# exists, and the sample videos of the video loader's smoke test (scripts/install-video-samples.sh).
set -uo pipefail
bash "$(dirname "${BASH_SOURCE[0]}")/install-video-samples.sh"
DIR=/usr/share/datasets/fashion-mnist
if [ -f "$DIR/train-images-idx3-ubyte.gz" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "warning: apt-get not found; get Fashion-MNIST's four IDX .gz files and pass"
  echo "         --set data.root=/path/to/dir (see README, 'Data')." >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
  || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null; } \
  || echo "warning: could not install dataset-fashion-mnist; see README, 'Data'." >&2
[ -f "$DIR/train-images-idx3-ubyte.gz" ] && echo "Fashion-MNIST ready in $DIR"
exit 0
