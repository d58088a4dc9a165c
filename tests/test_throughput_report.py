"""benchmarks/_throughput_report.py: the ratios and the table of the throughput benchmark, from
hand-written result rows (nothing is timed)."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import pytest


@pytest.fixture(scope="module")
def report_module() -> ModuleType:
    return importlib.import_module("_throughput_report")


def row(system: str, precision: str, images: float, flops: float) -> dict[str, Any]:
    return {
        "stage": 2,
        "system": system,
        "model": "m",
        "precision": precision,
        "mode": "eager",
        "forward_flops_per_image": 1e6,
        "images_per_second": images,
        "achieved_flops_per_second": flops,
        "utilisation": 0.1,
        "sampling_seconds_per_image_per_evaluation": 0.002,
        "peak_memory_mib": 100.0,
        "compile_seconds": None,
        "minor_page_faults_per_step": 12.0 if system == "ul" else 48096.0,
    }


def test_comparisons_are_ratios_within_the_run(report_module: ModuleType) -> None:
    results = [
        row("ul", "fp32", 10.0, 3e9),
        row("diffusers", "fp32", 20.0, 4e9),
        row("ul", "bf16", 15.0, 6e9),
        row("diffusers", "bf16", 20.0, 3e9),
    ]
    rows = report_module.comparisons(results)
    key = "ul_over_diffusers_achieved_flops"
    flops = {r["precision"]: r[key] for r in rows if key in r}
    assert flops == pytest.approx({"fp32": 0.75, "bf16": 2.0})
    speedups = {r["system"]: r["bf16_over_fp32_images_per_second"] for r in rows if "system" in r}
    assert speedups == pytest.approx({"ul": 1.5, "diffusers": 1.0})


def test_markdown_lists_every_row_and_ratio(report_module: ModuleType) -> None:
    results = [row("ul", "fp32", 10.0, 3e9), row("diffusers", "fp32", 20.0, 4e9)]
    report = {
        "matmul_peak_flops_per_second": {"fp32": 5e10, "bf16": 1e11},
        "machine": {"threads": 1},
        "settings": {"diffusers_keeps_freed_memory": False},
        "results": results,
        "comparisons": report_module.comparisons(results),
    }
    text = report_module.markdown(report)
    assert text.count("| 2 | ") == 2
    assert "ours ÷ diffusers achieved FLOP/s (stage 2, fp32, eager): 0.75" in text
    assert "fp32 50.0 GFLOP/s" in text
    assert "| 10.0% | 12 | " in text and "| 10.0% | 48096 | " in text  # page faults per step
    assert "ours keep freed memory (training/cpu_allocator.py); diffusers default" in text
