"""The GPU check's system description, its CUDA-test run, and the one-screen summary."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from unified_latents.gpu_check.peaks import bf16_peak_tflops
from unified_latents.training.precision import native_bf16, resolve_precision
from unified_latents.version import __version__


def system_info(device: torch.device, peak_override: float | None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "device": str(device),
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "python": platform.python_version(),
        "unified_latents": __version__,
        "precision": resolve_precision("auto", device),
        "native_bf16": native_bf16(device)[1],
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info |= {
            "name": properties.name,
            "capability": f"{properties.major}.{properties.minor}",
            "memory_gib": properties.total_memory / 2**30,
            "gpus_visible": torch.cuda.device_count(),
        }
    else:
        info["name"] = platform.processor() or platform.machine()
    table_peak = bf16_peak_tflops(info["name"]) if device.type == "cuda" else None
    info["bf16_peak_tflops"] = peak_override or table_peak
    info["peak_source"] = "--peak-tflops" if peak_override else ("table" if table_peak else None)
    return info


def tests_directory() -> Path | None:
    """tests/gpu of the source checkout this package runs from (None when pip-installed)."""
    root = Path(__file__).resolve().parents[3]  # gpu_check → unified_latents → src → root
    directory = root / "tests" / "gpu"
    return directory if directory.is_dir() else None


def run_cuda_tests(timeout: float) -> dict[str, Any]:
    """`pytest -m cuda tests/gpu` in a subprocess: its exit code and summary line."""
    directory = tests_directory()
    if directory is None:
        return {"ok": False, "summary": "tests/gpu not found (run from a source checkout)"}
    root = directory.parents[1]
    command = [
        sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-m", "cuda",
        "-p", "no:cacheprovider", str(directory),
    ]  # fmt: skip
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    try:
        done = subprocess.run(
            command, cwd=root, capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "summary": f"did not finish in {timeout:.0f} s"}
    lines = [line for line in done.stdout.strip().splitlines() if line.strip()]
    summary = lines[-1].strip("= ") if lines else done.stderr.strip()[-200:]
    counts = {
        kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|skipped|error)", summary)
    }
    failures = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    return {
        "ok": done.returncode in (0, 5) and not failures,  # 5: nothing collected/selected
        "returncode": done.returncode,
        "summary": summary,
        "counts": counts,
        "failures": failures[:10],
    }


def _number(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def summary(record: dict[str, Any]) -> str:
    info = record["system"]
    lines = [
        f"GPU check: {info['name']} ({info['device']}, torch {info['torch']}, CUDA "
        f"{info['cuda_runtime']}), precision {info['precision']}, bf16 peak "
        f"{_number(info['bf16_peak_tflops'], '.0f')} TFLOP/s"
        + (" [cpu smoke: tiny widths]" if record["smoke"] else ""),
        "",
        f"(a) CUDA tests: {'ok' if record['tests']['ok'] else 'FAILED'} - "
        f"{record['tests']['summary']}",
    ]
    lines += [f"    {failure}" for failure in record["tests"].get("failures", [])]
    lines += [
        "(b) training throughput (synthetic data"
        + (", tiny widths" if record["smoke"] else ", paper-scale widths, 512²")
        + "):",
        f"    {'stage':<7}{'compile':<9}{'batch':>6}{'img/s':>10}{'s/step':>9}"
        f"{'TFLOP/s':>9}{'MFU':>7}{'peak GiB':>10}",
    ]
    for m in record["throughput"]:
        head = f"    {m['stage']:<7}{m['compiled']!s:<9}{m['batch_size']:>6}"
        if m["skipped"] or m["error"]:
            lines.append(f"{head}  " + (f"skipped: {m['skipped']}" if m["skipped"] else m["error"]))
            continue
        lines.append(
            f"{head}{_number(m['images_per_second'], '.2f'):>10}"
            f"{_number(m['seconds_per_step'], '.3f'):>9}"
            f"{_number(m['achieved_tflops'], '.1f'):>9}"
            f"{_number(None if m['mfu'] is None else 100 * m['mfu'], '.1f'):>6}%"
            f"{_number(m['peak_memory_gib'], '.1f'):>10}"
        )
    ddp = record["ddp"]
    detail = (
        f"{ddp.get('backend')} world {ddp.get('world_size')}, step {ddp.get('step')}, "
        f"{ddp.get('wrapped_as')}, checkpoint loaded on CPU: {ddp.get('loaded_on_cpu')}"
        if "error" not in ddp
        else ddp["error"]
    )
    lines += [
        f"(c) torchrun + DDP step + checkpoint: {'ok' if ddp.get('ok') else 'FAILED'} - {detail}",
        "",
        f"{'PASS' if record['ok'] else 'FAIL'} in {record['seconds']:.0f} s; "
        f"details: {record['path']}",
    ]
    return "\n".join(lines)
