"""CUDA checks (`@pytest.mark.cuda`, skipped without a GPU; scripts/gpu-check.sh runs them):
device and dtype placement, a bf16 autocast step, a training step of every run kind, sampling,
and a checkpoint written from the GPU and loaded on the CPU."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import cuda_tests_device
from unified_latents.cli import main
from unified_latents.networks.vit import LatentViT
from unified_latents.runs.autoencoder import build_autoencoder, load_autoencoder
from unified_latents.runs.presets_tiny import autoencoder_tiny
from unified_latents.training.metrics_log import read_metrics
from unified_latents.training.precision import autocast, resolve_precision

pytestmark = pytest.mark.cuda
DEVICE = torch.device(cuda_tests_device())
ON_DEVICE = ["--set", f"train.device={DEVICE.type}", "--set", "train.max_steps=2"]


def train_rows(run: Path) -> list[dict[str, float]]:
    return [row for row in read_metrics(run) if row["split"] == "train"]


def test_device_and_dtype_placement() -> None:
    model = build_autoencoder(autoencoder_tiny()).to(DEVICE)
    assert {p.device.type for p in model.parameters()} == {DEVICE.type}
    if DEVICE.type == "cuda" and torch.cuda.get_device_capability(DEVICE)[0] >= 8:
        assert resolve_precision("auto", DEVICE) == "bf16"
    vit = model.prior.network
    assert isinstance(vit, LatentViT)
    seen: list[torch.dtype] = []
    vit.patch_in.register_forward_hook(lambda _, args, out: seen.append(out.dtype))
    x = torch.rand(4, 1, 8, 8, device=DEVICE) * 2 - 1
    generator = torch.Generator(device=DEVICE).manual_seed(0)
    with autocast(DEVICE, "bf16"):
        terms = model(x, generator)
    assert seen == [torch.bfloat16]  # network bodies in bf16 ...
    assert (
        terms.loss.dtype == torch.float32 and terms.loss.device.type == DEVICE.type
    )  # ... loss fp32
    assert torch.isfinite(terms.loss).all()


def test_bf16_autocast_training_step(tmp_path: Path) -> None:
    run = tmp_path / "ae"
    arguments = ["train-autoencoder", "--preset", "tiny", "--run-dir", str(run), *ON_DEVICE]
    assert main([*arguments, "--set", "train.precision=bf16", "--set", "train.eval_every=0"]) == 0
    rows = train_rows(run)
    assert rows and all(row["bf16"] == 1.0 and math.isfinite(row["loss"]) for row in rows)
    record = json.loads((run / "config.json").read_text())["config"]
    assert record["resolved"] == {"train.precision": "bf16"}


def test_every_run_kind_trains_samples_and_loads_on_cpu(tmp_path: Path) -> None:
    ae, base, e2e, pixel = (tmp_path / name for name in ("ae", "base", "e2e", "pixel"))
    assert main(["train-autoencoder", "--preset", "tiny", "--run-dir", str(ae), *ON_DEVICE]) == 0
    assert main(["encode", "--run", str(ae), "--device", DEVICE.type]) == 0
    train_base = ["train-base", "--autoencoder", str(ae), "--preset", "tiny", "--run-dir"]
    assert main([*train_base, str(base), *ON_DEVICE]) == 0
    assert main(["train-end-to-end", "--preset", "tiny", "--run-dir", str(e2e), *ON_DEVICE]) == 0
    assert main(["train-base", "--preset", "pixel-tiny", "--run-dir", str(pixel), *ON_DEVICE]) == 0
    for run in (ae, base, e2e, pixel):
        assert train_rows(run) and all(math.isfinite(r["loss"]) for r in train_rows(run)), run
    for run in (base, e2e, pixel):
        out = run / "cuda-samples"
        sample = ["sample", "--run", str(run), "--num", "4", "--steps", "3", "--decoder-steps", "2"]
        assert main([*sample, "--device", DEVICE.type, "--out", str(out)]) == 0
        images = np.load(out / "samples.npz")["images"]
        assert images.shape == (4, 1, 8, 8) and images.dtype == np.uint8
    # written from the GPU, read on the CPU: every tensor lands on the CPU and the model runs
    model, _, _ = load_autoencoder(ae, torch.device("cpu"))
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    x = torch.rand(2, 1, 8, 8) * 2 - 1
    with torch.no_grad():
        terms = model(x, torch.Generator().manual_seed(0))
    assert torch.isfinite(terms.loss).all()


def test_paper_layouts_train_with_checkpointing_and_fused_attention() -> None:
    """The paper-scale layouts (tiny widths): a bf16 step with activation checkpointing on the
    device, attention through SDPA (never the CPU-only explicit product on CUDA)."""
    from unified_latents.gpu_check.synthetic import check_configs
    from unified_latents.networks import transformer
    from unified_latents.networks.checkpointing import set_activation_checkpointing
    from unified_latents.objectives.latent_diffusion import LatentDiffusion

    autoencoder_config, base_config = check_configs(smoke=True)
    autoencoder = build_autoencoder(autoencoder_config).to(DEVICE)
    base = LatentDiffusion(base_config.model, autoencoder.latent_shape, 5.0).to(DEVICE)
    q = torch.randn(2, 2, 16, 8, device=DEVICE, dtype=torch.bfloat16, requires_grad=True)
    assert transformer._explicit_attention_is_faster(q) == (DEVICE.type == "cpu")
    generator = torch.Generator(device=DEVICE).manual_seed(0)
    x = torch.rand(2, 3, 64, 64, device=DEVICE) * 2 - 1
    for model in (autoencoder, base):
        assert set_activation_checkpointing(model, True) > 0
        with autocast(DEVICE, "bf16"):
            if model is base:
                z = torch.randn(2, *autoencoder.latent_shape, device=DEVICE)
                terms = base(z, torch.tensor([1, 2], device=DEVICE), generator)
            else:
                terms = autoencoder(x, generator)
        terms.loss.mean().backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
