"""bf16 autocast: the network bodies run in bf16 while λ, weights and loss reductions stay fp32
(DESIGN, "Math conventions"), and the tiny preset trains with finite losses on the CPU; a
`train.compile=true` failure is reported in one line."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import unified_latents.objectives.unified_latents as objective
from unified_latents.cli import main
from unified_latents.networks.denoiser import Denoiser
from unified_latents.runs.autoencoder import build_autoencoder
from unified_latents.runs.presets_tiny import autoencoder_tiny
from unified_latents.training.loop import autocast
from unified_latents.training.metrics_log import read_metrics

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_bf16_runs_the_networks_in_bf16_and_the_math_in_fp32(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch.manual_seed(0)
    model = build_autoencoder(autoencoder_tiny())
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    seen: dict[str, set[torch.dtype]] = {}

    def note(name: str, *tensors: Any) -> None:
        seen.setdefault(name, set()).update(t.dtype for t in tensors if isinstance(t, Tensor))

    for module in model.modules():
        if isinstance(module, Denoiser):
            module.register_forward_pre_hook(lambda _, args: note("logsnr", args[1]))
            module.register_forward_hook(lambda _, args, out: note("prediction", *out))
        elif isinstance(module, nn.Linear):
            module.register_forward_hook(lambda _, args, out: note("linear", out))
    loss_inputs = objective.diffusion_loss

    def recording_loss(*args: Tensor) -> Tensor:
        note("loss inputs (ε, ε̂, dλ/dt, weight)", *args)
        return loss_inputs(*args)

    monkeypatch.setattr(objective, "diffusion_loss", recording_loss)

    fp32 = model(x, torch.Generator().manual_seed(1))
    seen.clear()
    with autocast(torch.device("cpu"), "bf16"):
        bf16 = model(x, torch.Generator().manual_seed(1))
    # autocast is really on (only the λ embedding's MLP opts out, to resolve nearby λ)
    assert torch.bfloat16 in seen["linear"]
    for name in ("logsnr", "prediction", "loss inputs (ε, ε̂, dλ/dt, weight)"):
        assert seen[name] == {torch.float32}, name
    for key, value in bf16.means().items():
        assert getattr(bf16, key).dtype == torch.float32, key
        assert math.isfinite(value), key
    # same noise, bf16 network arithmetic: close to the fp32 loss
    assert bf16.loss.mean().item() == pytest.approx(fp32.loss.mean().item(), rel=0.05)


def test_tiny_preset_trains_in_bf16(tmp_path: Path) -> None:
    settings = ["--set", "train.precision=bf16", "--set", "train.max_steps=6"]
    arguments = ["--set", "train.log_every=1", "--set", "train.eval_every=6"]
    command = ["train-autoencoder", "--preset", "tiny", "--run-dir", str(tmp_path)]
    assert main([*command, *settings, *arguments]) == 0
    records = read_metrics(tmp_path)
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == list(range(1, 7))
    assert all(math.isfinite(r["loss"]) and r["skipped_steps"] == 0 for r in train)
    evals = [r for r in records if r["split"] == "eval"]
    assert evals and all(math.isfinite(r[key]) for r in evals for key in ("psnr_db", "ssim"))
    assert all(math.isfinite(r["bits_per_pixel"]) for r in evals)


@pytest.mark.slow
def test_a_compile_failure_is_one_clear_line(tmp_path: Path) -> None:
    """No working C++ compiler (simulated with CXX): `ul` exits 2 with an actionable message.
    (A successful `train.compile=true` run takes minutes on this CPU: see docs/distributed.md.)"""
    command = [sys.executable, "-m", "unified_latents.cli", "train-autoencoder", "--preset"]
    command += ["tiny", "--run-dir", str(tmp_path), "--set", "train.compile=true"]
    env = {**os.environ, "CXX": str(tmp_path / "no-such-compiler"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith("ul train-autoencoder: error: torch.compile failed")
    assert "train.compile=false" in result.stderr and "Traceback" not in result.stderr
