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


def row(
    system: str, precision: str, images: float, flops: float, repeat: int = 0
) -> dict[str, Any]:
    return {
        "repeat": repeat,
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


def test_repeats_give_the_median_of_per_repeat_ratios_with_their_range(
    report_module: ModuleType,
) -> None:
    # Repeat 1 is a slow minute for both systems: pairing within repeats cancels it.
    results = [
        row("ul", "fp32", 10.0, 3e9, repeat=0),
        row("diffusers", "fp32", 10.0, 2e9, repeat=0),
        row("diffusers", "fp32", 5.0, 1e9, repeat=1),
        row("ul", "fp32", 5.0, 1.2e9, repeat=1),
        row("ul", "fp32", 10.0, 2e9, repeat=2),
        row("diffusers", "fp32", 10.0, 2e9, repeat=2),
    ]
    (comparison,) = report_module.comparisons(results, {"fp32": True}, {"fp32": 1e10})
    assert comparison["repeats"] == 3
    assert comparison["ul_over_diffusers_achieved_flops"] == pytest.approx(1.2)
    assert comparison["ul_over_diffusers_achieved_flops_min"] == pytest.approx(1.0)
    assert comparison["ul_over_diffusers_achieved_flops_max"] == pytest.approx(1.5)
    assert comparison["native_precision"] is True
    assert comparison["target"] == "ours ≥ 1.5× diffusers" and not comparison["target_met"]
    assert comparison["ul_utilisation"] == pytest.approx(0.2)  # median 2e9 of a 1e10 peak


def test_target_falls_back_to_the_peak_where_one_and_a_half_times_diffusers_exceeds_it(
    report_module: ModuleType,
) -> None:
    near_peak = [row("ul", "fp32", 10.0, 8.5e9), row("diffusers", "fp32", 10.0, 7e9)]
    (comparison,) = report_module.comparisons(near_peak, {"fp32": True}, {"fp32": 1e10})
    assert comparison["target"] == "ours ≥ 80% of peak" and comparison["target_met"]
    below = [row("ul", "fp32", 10.0, 7.5e9), row("diffusers", "fp32", 10.0, 7e9)]
    (comparison,) = report_module.comparisons(below, {"fp32": True}, {"fp32": 1e10})
    assert not comparison["target_met"]


def test_emulated_precision_is_marked(report_module: ModuleType) -> None:
    results = [
        row("ul", "fp32", 10.0, 3e9),
        row("ul", "bf16", 1.0, 3e8),
        row("diffusers", "bf16", 1.0, 3e8),
    ]
    rows = report_module.comparisons(results, {"fp32": True, "bf16": False})
    assert all(r["native_precision"] is False for r in rows)
    text = "\n".join(report_module.comparison_line(r) for r in rows)
    assert "stage 2, bf16, eager, emulated): 1.00" in text


def test_end_to_end_summary_is_the_median_per_timed_thing(report_module: ModuleType) -> None:
    timings = [
        {"what": "ul sample", "seconds_per_image": s, "images": 50, "repeat": i}
        for i, s in enumerate((0.5, 0.3, 0.4))
    ] + [{"what": "Inception", "seconds_per_image": 0.1, "images": 50, "repeat": 0}]
    summary = {e["what"]: e for e in report_module.end_to_end_summary(timings)}
    assert summary["ul sample"]["seconds_per_image"] == pytest.approx(0.4)
    assert summary["ul sample"]["seconds_per_image_min"] == pytest.approx(0.3)
    assert summary["ul sample"]["repeats"] == 3 and summary["Inception"]["repeats"] == 1
    line = report_module.end_to_end_line(summary["ul sample"])
    assert line == "- ul sample: 0.400 s/image (50 images; median of 3, 0.300–0.500)"
