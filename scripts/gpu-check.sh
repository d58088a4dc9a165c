#!/usr/bin/env bash
# One-GPU check in ≤ 8 minutes: CUDA tests, paper-scale training throughput/MFU/memory with and
# without torch.compile, and a torchrun (NCCL) DDP step + checkpoint. Writes OUT/gpu-check.json.
#   scripts/gpu-check.sh [--out DIR] [--no-compile] [--peak-tflops T] [--cpu-smoke] ...
# See docs/distributed.md ("Checking a GPU machine") and `python -m unified_latents.gpu_check -h`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m unified_latents.gpu_check "$@"
