"""The GPU check (scripts/gpu-check.sh): its `--cpu-smoke` path end to end, the bf16 peak table
and the summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unified_latents.gpu_check.__main__ import main
from unified_latents.gpu_check.peaks import bf16_peak_tflops, mfu

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu-check.sh"


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", 989.4),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA H100 NVL", 835.0),
        ("NVIDIA H200", 989.4),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA A10", 125.0),
        ("NVIDIA L4", 121.0),
        ("NVIDIA L40S", 362.1),
        ("Tesla V100-SXM2-16GB", None),
    ],
)
def test_peak_table_matches_device_names(name: str, peak: float | None) -> None:
    assert bf16_peak_tflops(name) == peak


def test_mfu() -> None:
    assert mfu(494.7, 989.4) == pytest.approx(0.5)
    assert mfu(1.0, None) is None


@pytest.mark.slow
def test_cpu_smoke_runs_every_part(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--cpu-smoke", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "gpu-check.json").read_text())
    assert record["ok"] and record["smoke"]
    assert record["tests"]["ok"] and record["tests"]["counts"].get("skipped", 0) >= 3
    stages = [(m["stage"], m["compiled"]) for m in record["throughput"]]
    assert stages == [("stage1", False), ("base", False)]
    for measurement in record["throughput"]:
        assert measurement["error"] is None and measurement["images_per_second"] > 0
        assert measurement["training_gflops_per_image"] > 0 and measurement["mfu"] is None
    ddp = record["ddp"]
    assert ddp["backend"] == "gloo" and ddp["wrapped_as"] == "DistributedDataParallel"
    assert ddp["step"] == 1 and ddp["loaded_on_cpu"]
    printed = capsys.readouterr().out
    assert "(a) CUDA tests: ok" in printed and "(c) torchrun" in printed and "PASS" in printed


def test_without_cuda_the_full_check_refuses(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert main(["--out", "unused"]) == 2
    assert "--cpu-smoke" in capsys.readouterr().err


def test_wrapper_script_is_executable() -> None:
    assert SCRIPT.exists() and SCRIPT.stat().st_mode & 0o111
    assert "unified_latents.gpu_check" in SCRIPT.read_text()


def test_past_the_deadline_measurements_are_skipped_and_reported() -> None:
    import torch

    from unified_latents.gpu_check.report import summary
    from unified_latents.gpu_check.synthetic import check_configs
    from unified_latents.gpu_check.throughput import measure_all

    autoencoder, base = check_configs(smoke=True)
    results = measure_all(
        autoencoder, base, batch_sizes=(2, 4), device=torch.device("cpu"), precision="fp32",
        compile_modes=(False, True), steps=1, warmup=0, peak_tflops=None, deadline=0.0,
    )  # fmt: skip
    assert [(m.stage, m.compiled) for m in results] == [
        ("stage1", False), ("stage1", True), ("base", False), ("base", True),
    ]  # fmt: skip
    assert all(m.skipped and m.error is None and m.training_gflops_per_image > 0 for m in results)
    record = {
        "smoke": True,
        "system": {"name": "cpu", "device": "cpu", "torch": "x", "cuda_runtime": None,
                   "precision": "fp32", "bf16_peak_tflops": None},
        "tests": {"ok": True, "summary": "3 skipped"},
        "throughput": [m.record() for m in results],
        "ddp": {"ok": False, "error": "torchrun exited 1: boom"},
        "ok": False, "seconds": 1.0, "path": "gpu-check.json",
    }  # fmt: skip
    text = summary(record)
    assert text.count("skipped: over the time budget") == 4
    assert "FAILED - torchrun exited 1: boom" in text and text.endswith("gpu-check.json")
