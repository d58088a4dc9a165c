"""`ul demo` on the tiny preset: every stage runs, the report carries the measured figures, and a
re-run resumes (nothing is retrained) while still reporting the training time of the models."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from unified_latents.cli import main


def _demo(out: Path) -> list[str]:
    return [
        "demo",
        *("--out", str(out), "--preset", "tiny", "--num-samples", "10"),
        *("--autoencoder-minutes", "0.03", "--base-minutes", "0.03"),
    ]


def _training_minutes(report: str) -> tuple[float, float]:
    found = re.search(r"stage 1 ([\d.]+) min, stage 2 ([\d.]+) min", report)
    assert found is not None, report
    return float(found[1]), float(found[2])


@pytest.mark.slow
def test_demo_runs_every_stage_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    assert main(_demo(out)) == 0
    for path in ("reconstructions/grid.png", "samples/grid.png", "samples/samples.npz"):
        assert (out / path).is_file(), path
    report = (out / "report.md").read_text()
    assert "PSNR" in report and "bits/pixel" in report and "s/image" in report
    first = _training_minutes(report)
    assert all(0 < minutes < 1 for minutes in first)

    assert main(_demo(out)) == 0  # both budgets are spent: only evaluation and sampling rerun
    again = (out / "report.md").read_text()
    assert _training_minutes(again) == pytest.approx(first, abs=0.02)
