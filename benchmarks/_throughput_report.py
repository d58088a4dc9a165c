"""The comparison rows and the markdown table of `throughput.py`'s report (pure functions of the
measured rows, so they are tested without timing anything)."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any


def comparisons(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ours ÷ diffusers achieved FLOP/s, and bf16 ÷ fp32 images/s, within this run."""
    table = {(r["stage"], r["system"], r["precision"], r["mode"]): r for r in results}
    rows = []
    for (stage, system, precision, mode), row in table.items():
        if system == "ul" and (other := table.get((stage, "diffusers", precision, mode))):
            ratio = row["achieved_flops_per_second"] / other["achieved_flops_per_second"]
            rows.append(
                {
                    "stage": stage,
                    "precision": precision,
                    "mode": mode,
                    "ul_over_diffusers_achieved_flops": ratio,
                }
            )
        if precision == "bf16" and (fp32 := table.get((stage, system, "fp32", mode))):
            speedup = row["images_per_second"] / fp32["images_per_second"]
            rows.append(
                {
                    "stage": stage,
                    "system": system,
                    "mode": mode,
                    "bf16_over_fp32_images_per_second": speedup,
                }
            )
    return rows


def markdown(report: dict[str, Any]) -> str:
    peak = report["matmul_peak_flops_per_second"]
    lines = [
        f"Dense matmul peak ({report['machine']['threads']} thread(s)): "
        f"fp32 {peak['fp32'] / 1e9:.1f} GFLOP/s, bf16 {peak['bf16'] / 1e9:.1f} GFLOP/s",
        "",
        "Host memory: ours keep freed memory (training/cpu_allocator.py); diffusers "
        + ("the same" if report["settings"].get("diffusers_keeps_freed_memory") else "default"),
        "",
        "| stage | system | prec | mode | fwd MFLOP/img | img/s | achieved GFLOP/s | util | "
        "faults/step | sample ms/img/eval | peak MiB | compile s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        compile_s = "–" if r["compile_seconds"] is None else f"{r['compile_seconds']:.0f}"
        faults = r.get("minor_page_faults_per_step")  # absent in reports before 2026-11-30
        faults_text = "–" if faults is None else f"{faults:.0f}"
        lines.append(
            f"| {r['stage']} | {r['system']} ({r['model']}) | {r['precision']} | {r['mode']} | "
            f"{r['forward_flops_per_image'] / 1e6:.1f} | {r['images_per_second']:.1f} | "
            f"{r['achieved_flops_per_second'] / 1e9:.2f} | {r['utilisation']:.1%} | "
            f"{faults_text} | "
            f"{r['sampling_seconds_per_image_per_evaluation'] * 1e3:.2f} | "
            f"{r['peak_memory_mib']:.0f} | {compile_s} |"
        )
    lines.append("")
    for c in report["comparisons"]:
        where = f"stage {c['stage']}, {c.get('precision', c.get('system'))}, {c['mode']}"
        if "ul_over_diffusers_achieved_flops" in c:
            lines.append(
                f"- ours ÷ diffusers achieved FLOP/s ({where}): "
                f"{c['ul_over_diffusers_achieved_flops']:.2f}"
            )
        else:
            lines.append(
                f"- bf16 ÷ fp32 images/s ({where}): {c['bf16_over_fp32_images_per_second']:.2f}"
            )
    return "\n".join(lines)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
