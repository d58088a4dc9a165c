"""FLOP accounting of the run kinds (`evaluation/compute.py`): the end-to-end training step is
exactly one encoder, one base-model and one decoder evaluation, and training totals are steps ×
global batch × FLOPs per image."""

from __future__ import annotations

import pytest
import torch

from unified_latents.evaluation.compute import (
    TrainingCost,
    call_flops,
    end_to_end_flops,
    network_passes,
    training_compute,
)
from unified_latents.metrics.flops import forward_flops_per_example
from unified_latents.runs.end_to_end import build_end_to_end_model, condition_source
from unified_latents.runs.presets_tiny import end_to_end_tiny


def test_the_end_to_end_step_is_encoder_plus_base_plus_decoder() -> None:
    config = end_to_end_tiny()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_end_to_end_model(config).eval()
    conditions = condition_source(config.model.base.condition, [str(k) for k in range(10)])
    flops = end_to_end_flops(model, conditions, config.eval)

    # Each network counted on its own, outside the single-stage loss.
    x = torch.zeros(1, 1, 8, 8)
    z = torch.zeros(1, *model.base.latent_shape)
    logsnr, label = torch.zeros(1), torch.zeros(1, dtype=torch.long)
    generator = torch.Generator().manual_seed(0)
    encoder = call_flops(lambda: model.autoencoder.encode(x))
    base = forward_flops_per_example(model.base.denoiser, z, logsnr, label)
    decoder = call_flops(lambda: model.autoencoder.distortion(x, z, generator, z_logsnr=logsnr))
    assert encoder > 0 and base > 0 and decoder > 0
    assert flops["encoder_forward_per_image"] == encoder
    assert flops["base_forward_per_image"] == base
    assert flops["decoder_forward_per_image"] == decoder
    assert flops["end_to_end_forward_per_image"] == encoder + base + decoder
    assert flops["end_to_end_training_per_image"] == 3 * (encoder + base + decoder)

    # A sample: the guided base model at every step, then a full decoder sampling run.
    settings = config.eval
    passes = network_passes(
        model.base.schedule,
        num_steps=settings.base_steps,
        sampler=settings.sampler,
        guidance=settings.guidance,
    )
    assert flops["sampling_base_model_per_sample"] == passes * base
    assert flops["sampling_decoder_per_sample"] == (settings.decoder_steps + 1) * decoder
    assert "base_training_per_sample" not in flops  # the base model trains inside the step


def test_training_totals_are_steps_times_batch_times_flops_per_image() -> None:
    stage1 = TrainingCost(part="stage1", run_dir="ae", step=10, batch_size=32, flops_per_image=5.0)
    base = TrainingCost(part="base", run_dir="base", step=4, batch_size=64, flops_per_image=2.0)
    section, flops = training_compute([stage1, base])
    assert section["parts"]["stage1"]["images_seen"] == 320
    assert section["parts"]["stage1"]["training_flops"] == pytest.approx(1600.0)
    assert section["parts"]["base"]["training_flops"] == pytest.approx(512.0)
    assert section["total_flops"] == flops["training_total"] == pytest.approx(2112.0)
    assert flops["training_total_stage1"] == pytest.approx(1600.0)
    assert flops["training_total_base"] == pytest.approx(512.0)

    single, flops = training_compute([base])
    assert flops == {"training_total": pytest.approx(512.0)}  # one part: no breakdown
    assert list(single["parts"]) == ["base"]
