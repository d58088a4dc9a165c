"""Short training runs at fixed shapes: images/s, achieved TFLOP/s, MFU and peak memory.

One step is the training loop's step (training/loop.py): autocast forward of the loss, backward
of its mean over the per-dimension normaliser, gradient clipping, AdamW, EMA update. Timed steps
follow `warmup` untimed ones (compilation and allocator warm-up happen there). FLOPs per image
are 3 × the forward FLOPs of the networks (UL-SPEC §10), counted on `meta`
(evaluation/network_summary.py).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from unified_latents.data.datasets import to_model_range
from unified_latents.evaluation.network_summary import autoencoder_costs, base_costs, latent_shape
from unified_latents.gpu_check.peaks import mfu
from unified_latents.gpu_check.synthetic import SyntheticImages
from unified_latents.objectives.latent_diffusion import LatentDiffusion
from unified_latents.objectives.terms import LossTerms
from unified_latents.runs.autoencoder import AutoencoderRunConfig, build_autoencoder
from unified_latents.runs.base_model import BaseRunConfig
from unified_latents.training.ema import make_ema, update_ema
from unified_latents.training.optim import OptimConfig, build_optimizer
from unified_latents.training.precision import autocast

LossFn = Callable[[nn.Module, torch.Generator], LossTerms]


@dataclass
class Measurement:
    stage: str  # "stage1" or "base"
    compiled: bool
    batch_size: int
    steps: int
    precision: str
    training_gflops_per_image: float
    images_per_second: float | None = None
    seconds_per_step: float | None = None
    achieved_tflops: float | None = None
    mfu: float | None = None
    peak_memory_gib: float | None = None
    error: str | None = None
    skipped: str | None = None  # why it did not run (the time budget); not a failure

    def record(self) -> dict[str, Any]:
        return asdict(self)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_steps(
    model: nn.Module,
    loss_fn: LossFn,
    normalizer: float,
    *,
    device: torch.device,
    precision: str,
    compiled: bool,
    steps: int,
    warmup: int,
) -> float:
    """Seconds per timed step of the loop's training step."""
    model.to(device).train()
    optimizer = build_optimizer(model, OptimConfig(lr=1e-4))
    ema = make_ema(model)
    trainable: nn.Module = torch.compile(model) if compiled else model  # type: ignore[assignment]
    parameters = [p for p in model.parameters() if p.requires_grad]
    generator = torch.Generator(device=device).manual_seed(0)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            terms = loss_fn(trainable, generator)
        (terms.loss.float().mean() / normalizer).backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        update_ema(ema, model, 0.9999)

    for _ in range(warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return (time.perf_counter() - start) / steps


def measure(
    stage: str,
    build: Callable[[], tuple[nn.Module, LossFn, float]],
    *,
    batch_size: int,
    training_flops_per_image: float,
    device: torch.device,
    precision: str,
    compiled: bool,
    steps: int,
    warmup: int,
    peak_tflops: float | None,
) -> Measurement:
    result = Measurement(
        stage, compiled, batch_size, steps, precision, training_flops_per_image / 1e9
    )
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    try:
        model, loss_fn, normalizer = build()
        seconds = run_steps(
            model, loss_fn, normalizer, device=device, precision=precision,
            compiled=compiled, steps=steps, warmup=warmup,
        )  # fmt: skip
    except Exception as error:  # e.g. out of memory, or no compiler for torch.compile
        lines = str(error).strip().splitlines()
        result.error = f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]
        return result
    finally:
        gc.collect()
    result.seconds_per_step = seconds
    result.images_per_second = batch_size / seconds
    result.achieved_tflops = result.images_per_second * training_flops_per_image / 1e12
    result.mfu = mfu(result.achieved_tflops, peak_tflops)
    if device.type == "cuda":
        result.peak_memory_gib = torch.cuda.max_memory_allocated(device) / 2**30
    return result


def stage1_builder(
    config: AutoencoderRunConfig, batch_size: int, device: torch.device
) -> Callable[[], tuple[nn.Module, LossFn, float]]:
    data = config.data
    shape = (data.channels, data.image_size, data.image_size)

    def build() -> tuple[nn.Module, LossFn, float]:
        images, _ = next(SyntheticImages(batch_size, shape, 0, seed=0))
        x = to_model_range(images).to(device)

        def loss(module: nn.Module, generator: torch.Generator) -> LossTerms:
            terms: LossTerms = module(x, generator)
            return terms

        return build_autoencoder(config), loss, float(x[0].numel())

    return build


def base_builder(
    config: BaseRunConfig, shape: tuple[int, ...], batch_size: int, device: torch.device
) -> Callable[[], tuple[nn.Module, LossFn, float]]:
    def build() -> tuple[nn.Module, LossFn, float]:
        generator = torch.Generator().manual_seed(0)
        z = torch.randn(batch_size, *shape, generator=generator).to(device)
        classes = max(1, config.model.condition.num_classes)
        cond: Tensor | None = torch.randint(0, classes, (batch_size,), generator=generator)
        if config.model.condition.kind != "class":
            cond = None
        cond = None if cond is None else cond.to(device)

        def loss(module: nn.Module, generator: torch.Generator) -> LossTerms:
            terms: LossTerms = module(z, cond, generator)
            return terms

        model = LatentDiffusion(config.model, shape, logsnr_max=5.0)
        return model, loss, float(z[0].numel())

    return build


def measure_all(
    autoencoder: AutoencoderRunConfig,
    base: BaseRunConfig,
    *,
    batch_sizes: tuple[int, int],
    device: torch.device,
    precision: str,
    compile_modes: tuple[bool, ...],
    steps: int,
    warmup: int,
    peak_tflops: float | None,
    deadline: float | None = None,
) -> list[Measurement]:
    """Stage 1 and the base model, each without and with torch.compile (as asked); once
    `time.perf_counter()` passes `deadline` the remaining measurements are skipped."""
    shape = latent_shape(lambda: build_autoencoder(autoencoder))
    stage1_costs = autoencoder_costs(lambda: build_autoencoder(autoencoder))
    stage1_flops = 3.0 * sum(c.forward_flops_per_image for c in stage1_costs)
    base_flops = 3.0 * base_costs(base.model, shape)[0].forward_flops_per_image
    jobs = [
        (
            "stage1",
            stage1_builder(autoencoder, batch_sizes[0], device),
            batch_sizes[0],
            stage1_flops,
        ),
        ("base", base_builder(base, shape, batch_sizes[1], device), batch_sizes[1], base_flops),
    ]
    results = []
    for stage, build, batch_size, flops in jobs:
        for compiled in compile_modes:
            if deadline is not None and time.perf_counter() > deadline:
                late = Measurement(stage, compiled, batch_size, 0, precision, flops / 1e9)
                late.skipped = "over the time budget (--budget-minutes)"
                results.append(late)
                continue
            if compiled:
                torch._dynamo.reset()
            results.append(
                measure(
                    stage, build, batch_size=batch_size, training_flops_per_image=flops,
                    device=device, precision=precision, compiled=compiled, steps=steps,
                    warmup=warmup, peak_tflops=peak_tflops,
                )
            )  # fmt: skip
    return results
