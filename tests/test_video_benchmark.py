"""benchmarks/video.py (issue 17): the smoke run trains and evaluates both arms, also with the two
arms in two processes at once (`--jobs 2`), an override reaches the UL autoencoder only, and
`--decoder-samples` the UL model's evaluation only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from unified_latents.runs.directory import read_run_record

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "video.py"


def test_two_arms_in_two_processes_write_both_rows(tmp_path: Path) -> None:
    out = tmp_path / "video.json"
    command = [sys.executable, str(SCRIPT), "--work-dir", str(tmp_path), "--tiny", "--kl-vae"]
    command += ["--jobs", "2", "--ul-set", "model.loss_factor=2.5", "--out", str(out)]
    command += ["--decoder-samples", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    (baseline,) = result["baselines"]
    assert result["runs"]["autoencoder"] == str(tmp_path / "autoencoder")
    assert baseline["runs"]["autoencoder"] == str(tmp_path / "kl-vae-autoencoder")
    assert result["steps"]["base"] > 0 and baseline["steps"]["base"] > 0
    assert result["settings"]["autoencoder_overrides"] == ["model.loss_factor=2.5"]
    ul = read_run_record(tmp_path / "autoencoder")["run"]["model"]
    kl = read_run_record(tmp_path / "kl-vae-autoencoder")["run"]["model"]
    assert ul["loss_factor"] == 2.5
    assert kl.get("loss_factor") != 2.5
    assert result["settings"]["decoder_samples"] == 2
    ul_eval = json.loads((tmp_path / "base" / "eval" / "eval.json").read_text())
    kl_eval = json.loads((tmp_path / "kl-vae-base" / "eval" / "eval.json").read_text())
    assert ul_eval["settings"]["decoder_samples"] == 2
    assert kl_eval["settings"]["decoder_samples"] == 1
