"""Presets of the decoder-distillation run kind (`runs/decoder_distillation.py`); the teacher run
is given with `--set teacher_run=AE_RUN` (or `ul distill-decoder --run AE_RUN`)."""

from __future__ import annotations

from collections.abc import Callable

from unified_latents.runs.decoder_distillation import (
    DecoderDistillationRunConfig,
    DistillationEvalConfig,
)
from unified_latents.runs.presets_common import demo_training, tiny_training
from unified_latents.training.optim import OptimConfig


def distillation_fashion_mnist() -> DecoderDistillationRunConfig:
    """A 4-step decoder for a `fashion-mnist` autoencoder run: students of 16, 8 and 4 DDIM steps
    (the first teacher is the trained decoder with DDIM at 32 steps), 1,000 optimizer steps each.
    The EMA averages over ~100 steps, well inside a phase, so the evaluated student is not an
    average over students of different step counts [C]."""
    return DecoderDistillationRunConfig(
        initial_steps=16,
        target_steps=4,
        steps_per_phase=1000,
        optim=OptimConfig(lr=1e-4, warmup_steps=50),
        train=demo_training(batch_size=64, max_steps=3000, eval_every=500, ema_decay=0.99),
        eval=DistillationEvalConfig(num_images=256, num_reconstructions=64),
    )


def distillation_tiny() -> DecoderDistillationRunConfig:
    """For tests: a `tiny` autoencoder's decoder, 4 → 2 → 1 steps, 2 optimizer steps each."""
    return DecoderDistillationRunConfig(
        initial_steps=4,
        target_steps=1,
        steps_per_phase=2,
        optim=OptimConfig(lr=1e-3, warmup_steps=0),
        train=tiny_training(max_steps=6, eval_every=3),
        eval=DistillationEvalConfig(num_images=32, num_reconstructions=16, batch_size=64),
    )


DECODER_DISTILLATION_PRESETS: dict[str, Callable[[], DecoderDistillationRunConfig]] = {
    "fashion-mnist": distillation_fashion_mnist,
    "tiny": distillation_tiny,
}
