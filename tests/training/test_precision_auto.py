"""train.precision=auto: native-bf16 detection from mocked CUDA devices and /proc/cpuinfo, the
once-only warning for emulated bf16, and the resolved precision recorded by a run."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from unified_latents.cli import main
from unified_latents.config import from_dict
from unified_latents.runs.directory import training_precision
from unified_latents.training import precision
from unified_latents.training.config import TrainConfig
from unified_latents.training.metrics_log import read_metrics
from unified_latents.training.precision import (
    PrecisionWarning,
    cpu_flags,
    native_bf16,
    resolve_precision,
)

CPU = torch.device("cpu")
AVX2 = frozenset({"fpu", "sse2", "avx", "avx2", "fma"})
SAPPHIRE_RAPIDS = AVX2 | {"avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}


@pytest.fixture(autouse=True)
def fresh_warnings() -> Iterator[None]:
    precision._warned.clear()
    yield
    precision._warned.clear()


def test_cpuinfo_flags_x86_and_aarch64(tmp_path: Path) -> None:
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nmodel name\t: Xeon\nflags\t\t: fpu avx2 amx_bf16\n\n")
    assert cpu_flags(x86) == {"fpu", "avx2", "amx_bf16"}
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    assert "bf16" in (cpu_flags(arm) or ())
    assert cpu_flags(tmp_path / "missing") is None


@pytest.mark.parametrize(
    ("flags", "native"),
    [
        (AVX2, False),
        (SAPPHIRE_RAPIDS, True),
        (AVX2 | {"avx512_bf16"}, True),
        (AVX2 | {"avx512f"}, False),
    ],
)
def test_cpu_detection(flags: frozenset[str], native: bool) -> None:
    assert native_bf16(CPU, flags=flags)[0] is native
    assert resolve_precision("auto", CPU, flags=flags) == ("bf16" if native else "fp32")


def test_unreadable_cpuinfo_means_no_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "system_cpu_flags", lambda: None)
    native, why = native_bf16(CPU)
    assert not native and "unreadable" in why


@pytest.mark.parametrize(
    ("capability", "expected"), [((9, 0), "bf16"), ((8, 0), "bf16"), ((7, 5), "fp32")]
)
def test_cuda_detection_from_compute_capability(
    monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int], expected: str
) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: capability)
    assert resolve_precision("auto", torch.device("cuda", 0)) == expected


def test_other_devices_and_explicit_values() -> None:
    assert resolve_precision("auto", torch.device("meta")) == "fp32"
    assert resolve_precision("fp32", CPU, flags=SAPPHIRE_RAPIDS) == "fp32"
    assert resolve_precision("bf16", CPU, flags=SAPPHIRE_RAPIDS) == "bf16"
    with pytest.raises(ValueError, match="auto, fp32, bf16"):
        resolve_precision("fp16", CPU)


def test_explicit_bf16_on_emulating_hardware_warns_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert resolve_precision("bf16", CPU, flags=AVX2) == "bf16"
        assert resolve_precision("bf16", CPU, flags=AVX2) == "bf16"
        resolve_precision("bf16", CPU, flags=SAPPHIRE_RAPIDS)  # native: no warning
    messages = [str(w.message) for w in caught if issubclass(w.category, PrecisionWarning)]
    assert len(messages) == 1
    assert "12–14×" in messages[0] and "precision=auto" in messages[0]
    # another device type warns on its own
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: (7, 0))
    with pytest.warns(PrecisionWarning, match="compute capability 7.0"):
        resolve_precision("bf16", torch.device("cuda", 0))


def test_auto_is_the_default_and_stored_values_keep_their_meaning() -> None:
    assert TrainConfig().precision == "auto"
    assert from_dict(TrainConfig, {"precision": "fp32"}).precision == "fp32"
    assert from_dict(TrainConfig, {"precision": "bf16"}).precision == "bf16"


def test_a_run_records_the_resolved_precision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(precision, "system_cpu_flags", lambda: AVX2)
    run = tmp_path / "ae"
    settings = ["--set", "train.max_steps=2", "--set", "train.eval_every=0"]
    assert main(["train-autoencoder", "--preset", "tiny", "--run-dir", str(run), *settings]) == 0
    record = json.loads((run / "config.json").read_text())["config"]
    assert record["run"]["train"]["precision"] == "auto"
    assert record["resolved"] == {"train.precision": "fp32"}
    assert training_precision(run) == "fp32"
    train_rows = [r for r in read_metrics(run) if r["split"] == "train"]
    assert train_rows and all(r["bf16"] == 0.0 for r in train_rows)
