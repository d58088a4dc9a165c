"""The comparison rows and the markdown table of `throughput.py`'s report (pure functions of the
measured rows, so they are tested without timing anything).

Rows carry a `repeat` index (0 when absent, as in reports before 2026-12-07). A comparison pairs
ours with diffusers (or bf16 with fp32) within each repeat and reports the median of those
per-repeat ratios with their min and max, so machine drift between repeats shows as a spread
instead of hiding in one number."""

from __future__ import annotations

import platform
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

# Issue 18's targets: ours ≥ 1.5× diffusers' achieved FLOP/s, or ≥ 80 % of the measured matmul
# peak of that precision where 1.5× diffusers would exceed the peak.
TARGET_RATIO = 1.5
TARGET_UTILISATION = 0.8

Key = tuple[int, str, str, str]  # (stage, system, precision, mode)


def by_repeat(results: list[dict[str, Any]]) -> dict[Key, dict[int, dict[str, Any]]]:
    table: dict[Key, dict[int, dict[str, Any]]] = defaultdict(dict)
    for r in results:
        table[(r["stage"], r["system"], r["precision"], r["mode"])][r.get("repeat", 0)] = r
    return table


def spread(name: str, values: list[float]) -> dict[str, float]:
    """`name`: the median of `values`; `name_min`, `name_max`: their range."""
    return {name: statistics.median(values), f"{name}_min": min(values), f"{name}_max": max(values)}


def comparisons(
    results: list[dict[str, Any]],
    native: dict[str, bool] | None = None,
    peak: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Ours ÷ diffusers achieved FLOP/s and bf16 ÷ fp32 images/s: per-repeat ratios, summarised.

    `native` says which precisions the device runs natively (`native_precision` of each row;
    bf16 ÷ fp32 rows are native only if bf16 is); with `peak` (matmul FLOP/s per precision) each
    ours ÷ diffusers row also gets the median utilisations and whether issue 18's target holds."""
    table = by_repeat(results)
    rows = []
    for (stage, system, precision, mode), ours in table.items():
        if system == "ul" and (other := table.get((stage, "diffusers", precision, mode))):
            key = "achieved_flops_per_second"
            repeats, ratios = paired_ratios(ours, other, key)
            summary = spread("ul_over_diffusers_achieved_flops", ratios)
            row = {"stage": stage, "precision": precision, "mode": mode, "repeats": len(repeats)}
            row |= summary
            if native is not None:
                row["native_precision"] = native.get(precision, False)
            if peak is not None and precision in peak:
                row |= target_verdict(
                    [ours[i][key] for i in repeats],
                    [other[i][key] for i in repeats],
                    peak[precision],
                    summary["ul_over_diffusers_achieved_flops"],
                )
            rows.append(row)
        if precision == "bf16" and (fp32 := table.get((stage, system, "fp32", mode))):
            repeats, speedups = paired_ratios(ours, fp32, "images_per_second")
            row = {"stage": stage, "system": system, "mode": mode, "repeats": len(repeats)}
            row |= spread("bf16_over_fp32_images_per_second", speedups)
            if native is not None:
                row["native_precision"] = native.get("bf16", False)
            rows.append(row)
    return rows


def paired_ratios(
    top: dict[int, dict[str, Any]], bottom: dict[int, dict[str, Any]], key: str
) -> tuple[list[int], list[float]]:
    """The repeats both sides have, and top ÷ bottom of `key` within each."""
    repeats = sorted(top.keys() & bottom.keys())
    return repeats, [top[i][key] / bottom[i][key] for i in repeats]


def target_verdict(
    ours: list[float], theirs: list[float], peak: float, ratio: float
) -> dict[str, Any]:
    """Issue 18's target on medians: ratio ≥ 1.5, or, where 1.5× diffusers exceeds the peak,
    ours ≥ 80 % of the peak."""
    ours_utilisation = statistics.median(ours) / peak
    theirs_utilisation = statistics.median(theirs) / peak
    bound_applies = TARGET_RATIO * theirs_utilisation > 1.0
    met = ratio >= TARGET_RATIO or (bound_applies and ours_utilisation >= TARGET_UTILISATION)
    return {
        "ul_utilisation": ours_utilisation,
        "diffusers_utilisation": theirs_utilisation,
        "target": (
            f"ours ≥ {TARGET_UTILISATION:.0%} of peak"
            if bound_applies
            else f"ours ≥ {TARGET_RATIO}× diffusers"
        ),
        "target_met": met,
    }


def markdown(report: dict[str, Any]) -> str:
    peak = report["matmul_peak_flops_per_second"]
    machine = report["machine"]
    peaks = ", ".join(f"{p} {value / 1e9:.1f} GFLOP/s" for p, value in peak.items())
    lines = [f"Dense matmul peak ({machine['threads']} thread(s)): {peaks}"]
    for precision, routes in report.get("matmul_peak_by_route", {}).items():
        by_route = ", ".join(f"{name} {value / 1e9:.1f}" for name, value in routes.items())
        lines.append(f"  {precision} by route (GFLOP/s): {by_route}")
    if machine.get("cpu_matmul"):
        lines.append(f"Our CPU fp32 linears: {machine['cpu_matmul']} (networks/cpu_linear.py)")
    if "bf16_native" in machine:
        lines.append(
            f"bf16 native on this device: {'yes' if machine['bf16_native'] else 'no'} "
            f"({machine.get('bf16_reason', '')})"
        )
    lines += [
        "",
        "Host memory: ours keep freed memory (training/cpu_allocator.py); diffusers "
        + ("the same" if report["settings"].get("diffusers_keeps_freed_memory") else "default"),
        "",
        "| rep | stage | system | prec | mode | fwd MFLOP/img | img/s | achieved GFLOP/s | util | "
        "faults/step | sample ms/img/eval | peak MiB | compile s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        compile_s = "–" if r["compile_seconds"] is None else f"{r['compile_seconds']:.0f}"
        faults = r.get("minor_page_faults_per_step")  # absent in reports before 2026-11-30
        faults_text = "–" if faults is None else f"{faults:.0f}"
        lines.append(
            f"| {r.get('repeat', 0)} | {r['stage']} | {r['system']} ({r['model']}) | "
            f"{r['precision']} | {r['mode']} | "
            f"{r['forward_flops_per_image'] / 1e6:.1f} | {r['images_per_second']:.1f} | "
            f"{r['achieved_flops_per_second'] / 1e9:.2f} | {r['utilisation']:.1%} | "
            f"{faults_text} | "
            f"{r['sampling_seconds_per_image_per_evaluation'] * 1e3:.2f} | "
            f"{r['peak_memory_mib']:.0f} | {compile_s} |"
        )
    lines.append("")
    lines += [comparison_line(c) for c in report["comparisons"]]
    lines += [end_to_end_line(e) for e in report.get("end_to_end", [])]
    return "\n".join(lines)


def comparison_line(c: dict[str, Any]) -> str:
    where = f"stage {c['stage']}, {c.get('precision', c.get('system'))}, {c['mode']}"
    if c.get("native_precision") is False:
        where += ", emulated"
    name = (
        "ul_over_diffusers_achieved_flops"
        if "ul_over_diffusers_achieved_flops" in c
        else "bf16_over_fp32_images_per_second"
    )
    what = "ours ÷ diffusers achieved FLOP/s" if name.startswith("ul") else "bf16 ÷ fp32 images/s"
    text = f"- {what} ({where}): {c[name]:.2f}"
    if c.get("repeats", 1) > 1:
        text += f" (median of {c['repeats']}, {c[f'{name}_min']:.2f}–{c[f'{name}_max']:.2f})"
    if "target_met" in c:
        verdict = "met" if c["target_met"] else "not met"
        text += f"; target {c['target']}: {verdict} (ours at {c['ul_utilisation']:.0%} of peak)"
    return text


def end_to_end_summary(timings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per timed thing (`what`): the median seconds per image over the repeats, with
    min and max."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for timing in timings:
        grouped[timing["what"]].append(timing)
    return [
        {
            "what": what,
            "images": rows[0]["images"],
            "repeats": len(rows),
            **spread("seconds_per_image", [row["seconds_per_image"] for row in rows]),
        }
        for what, rows in grouped.items()
    ]


def end_to_end_line(e: dict[str, Any]) -> str:
    text = f"- {e['what']}: {e['seconds_per_image']:.3f} s/image ({e['images']} images"
    if e.get("repeats", 1) > 1:
        low, high = e["seconds_per_image_min"], e["seconds_per_image_max"]
        text += f"; median of {e['repeats']}, {low:.3f}–{high:.3f}"
    return text + ")"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
