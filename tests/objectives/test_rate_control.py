"""Rate targeting (objectives/rate_control.py): the closed loop settles on a synthetic rate curve
with a lag, respects its bounds, keeps its state in buffers, and drives UL's c_lf in training."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from unified_latents.cli import main
from unified_latents.objectives.rate_control import RateControlConfig, RateController
from unified_latents.objectives.unified_latents import UnifiedLatents
from unified_latents.runs.autoencoder import build_autoencoder
from unified_latents.runs.presets import AUTOENCODER_PRESETS
from unified_latents.runs.presets_tiny import autoencoder_tiny


def simulate(target: float, slope: float, steps: int, lag: float = 200.0) -> list[float]:
    """A plant whose rate relaxes (time constant `lag` steps) towards 0.1·c_lf^slope, measured
    with 10% noise per batch. Returns the controller's r̄ at every step."""
    controller = RateController(RateControlConfig(), target, initial_loss_factor=1.5)
    rng = np.random.default_rng(0)
    rate, averages = 0.3, []
    for _ in range(steps):
        steady = 0.1 * float(controller.loss_factor) ** slope
        rate += (steady - rate) / lag
        controller.update(rate * (1.0 + 0.1 * rng.standard_normal()))
        averages.append(float(controller.rate_average))
    return averages


@pytest.mark.parametrize("slope", [0.7, 1.6])
@pytest.mark.parametrize("target", [0.05, 0.1, 0.2])
def test_closed_loop_settles_within_five_percent(target: float, slope: float) -> None:
    averages = simulate(target, slope, steps=8000)
    settled = np.array(averages[-1000:])
    assert np.all(np.abs(settled / target - 1.0) < 0.05), (settled.min(), settled.max())


def test_unreachable_target_stops_at_the_bound() -> None:
    config = RateControlConfig(loss_factor_max=4.0)
    controller = RateController(config, target=10.0, initial_loss_factor=1.5)
    for _ in range(2000):
        controller.update(0.1)
    assert float(controller.loss_factor) == pytest.approx(4.0)


def test_one_step_is_bounded_and_moves_against_the_error() -> None:
    controller = RateController(RateControlConfig(max_step=0.01), 0.1, initial_loss_factor=2.0)
    controller.update(0.5)  # far too many bits: c_lf must fall, by at most e^0.01
    assert 2.0 * math.exp(-0.01) - 1e-6 <= float(controller.loss_factor) < 2.0
    controller.update(float("nan"))  # ignored
    assert math.isfinite(float(controller.rate_average))


def test_state_round_trips_through_a_state_dict() -> None:
    first = RateController(RateControlConfig(), 0.1, initial_loss_factor=2.0)
    for rate in (0.3, 0.2, 0.15):
        first.update(rate)
    second = RateController(RateControlConfig(), 0.1, initial_loss_factor=2.0)
    second.load_state_dict(first.state_dict())
    assert torch.equal(second.loss_factor, first.loss_factor)
    assert torch.equal(second.rate_average, first.rate_average)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="outside the controller's bounds"):
        RateController(RateControlConfig(loss_factor_max=2.0), 0.1, initial_loss_factor=3.0)
    with pytest.raises(ValueError, match="gain"):
        RateControlConfig(gain=0.0)


def test_ul_training_forward_steers_c_lf_after_the_warm_up() -> None:
    config = autoencoder_tiny()
    model_config = replace(config.model, target_bits_per_pixel=1e-4)  # far below: c_lf falls
    torch.manual_seed(0)
    model = UnifiedLatents(model_config, image_channels=1, image_size=8)
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    before = float(model.rate_controller.loss_factor)  # type: ignore[union-attr]
    terms = model(x, torch.Generator().manual_seed(0), rate_weight=0.5)  # warm-up: no step
    assert float(model.rate_controller.loss_factor) == before  # type: ignore[union-attr]
    assert float(terms.loss_factor.mean()) == pytest.approx(before)  # type: ignore[attr-defined]
    model(x, torch.Generator().manual_seed(0))
    assert float(model.rate_controller.loss_factor) < before  # type: ignore[union-attr]
    model.eval()
    now = float(model.rate_controller.loss_factor)  # type: ignore[union-attr]
    model(x, torch.Generator().manual_seed(0))  # evaluation takes no step
    assert float(model.rate_controller.loss_factor) == now  # type: ignore[union-attr]


def test_cli_flag_sets_the_target(capsys: pytest.CaptureFixture[str]) -> None:
    arguments = ["train-autoencoder", "--preset", "tiny", "--target-bits-per-pixel", "0.1"]
    assert main([*arguments, "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["run"]["model"]["target_bits_per_pixel"] == 0.1


def test_baselines_refuse_a_target() -> None:
    config = AUTOENCODER_PRESETS["kl-vae-tiny"]()
    config = replace(config, model=replace(config.model, target_bits_per_pixel=0.1))
    with pytest.raises(ValueError, match="no such loop"):
        build_autoencoder(config)
