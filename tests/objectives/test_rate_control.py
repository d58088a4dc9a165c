"""Rate targeting (objectives/rate_control.py): the closed loop settles on a synthetic rate curve
with a lag, respects its bounds, keeps its state in buffers, and drives UL's c_lf in training."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from unified_latents.cli import main
from unified_latents.objectives.rate_control import RateControlConfig, RateController
from unified_latents.objectives.unified_latents import UnifiedLatents
from unified_latents.runs.autoencoder import build_autoencoder
from unified_latents.runs.presets import AUTOENCODER_PRESETS
from unified_latents.runs.presets_tiny import autoencoder_tiny
from unified_latents.training.ema import ema_decay_at
from unified_latents.training.metrics_log import read_metrics


def simulate(
    target: float,
    slope: float,
    steps: int,
    lag: float = 200.0,
    *,
    held_out_factor: float = 1.0,
    eval_every: int = 0,
    calibration: bool = True,
    ema_window: int = 1,
    calibration_window: int = 1000,
    warmup: int = 0,
) -> list[float]:
    """A plant whose rate relaxes (time constant `lag` steps) towards 0.1·c_lf^slope, measured
    with 10% noise per batch; the controller acts after `warmup` steps (the rate warm-up). Its
    held-out rate (of the EMA weights) is `held_out_factor` times the training rate averaged as
    the loop's EMA averages weights (training/ema.py's warm-up schedule, longest window
    `ema_window` steps; 1: no lag), measured every `eval_every` steps (0: never). Returns the
    held-out rate at every step."""
    config = RateControlConfig(
        held_out_calibration=calibration, calibration_window=calibration_window
    )
    controller = RateController(config, target, initial_loss_factor=1.5, start_step=warmup)
    rng = np.random.default_rng(0)
    rate, lagged, held_out = 0.3, 0.3, []
    for step in range(1, steps + 1):
        steady = 0.1 * float(controller.loss_factor) ** slope
        rate += (steady - rate) / lag
        lagged += (rate - lagged) * (1.0 - ema_decay_at(step, 1.0 - 1.0 / ema_window))
        if step > warmup:
            controller.update(rate * (1.0 + 0.1 * rng.standard_normal()))
        held_out.append(held_out_factor * lagged)
        if eval_every and step % eval_every == 0:
            controller.calibrate(held_out_factor * lagged * (1.0 + 0.01 * rng.standard_normal()))
    return held_out


@pytest.mark.parametrize("slope", [0.7, 1.6])
@pytest.mark.parametrize("target", [0.05, 0.1, 0.2])
def test_closed_loop_settles_within_five_percent(target: float, slope: float) -> None:
    settled = np.array(simulate(target, slope, steps=8000)[-1000:])
    assert np.all(np.abs(settled / target - 1.0) < 0.05), (settled.min(), settled.max())


@pytest.mark.parametrize("held_out_factor", [0.9, 1.1])
def test_held_out_calibration_lands_the_held_out_rate(held_out_factor: float) -> None:
    """The EMA model's held-out rate differs from the training batches' (measured: −8 %); with
    an evaluation every 1,000 steps the held-out rate settles within ±5 % of the target, and
    without calibration it stays off by the gap."""
    target = 0.1
    run = partial(simulate, target, 1.0, 10_000, held_out_factor=held_out_factor, eval_every=1000,
                  ema_window=1000)  # fmt: skip
    held_out = np.array(run()[-1000:])
    assert np.all(np.abs(held_out / target - 1.0) < 0.05), (held_out.min(), held_out.max())
    plain = np.array(run(calibration=False)[-1000:])
    assert abs(plain.mean() / target - 1.0) > 0.07


def test_calibration_against_the_slow_rate_sees_through_the_ema_lag() -> None:
    """The EMA model's rate lags the online rate as the EMA weights do (a window of (10 + n)/9
    steps at step n, up to 1,000). A target far below the starting rate makes the rate fall
    fast after the warm-up and undershoot; a ratio against the fast r̄ then compares a lagging
    held-out rate with a current one (measured: +20 % at 0.04 bits/pixel). r̃ follows the EMA's
    schedule, so its ratio lands the held-out rate within ±5 %."""
    target = 0.04
    run = partial(simulate, target, 1.0, 8000, held_out_factor=0.92, eval_every=1000,
                  ema_window=1000, warmup=1000)  # fmt: skip
    slow = np.array(run()[-1000:])
    fast = np.array(run(calibration_window=100)[-1000:])  # r̃ ≈ r̄: the first version
    slow_error, fast_error = abs(slow.mean() / target - 1), abs(fast.mean() / target - 1)
    assert slow_error < 0.05 and slow_error < fast_error, (slow_error, fast_error)


def test_calibration_waits_for_the_loop_and_is_bounded() -> None:
    controller = RateController(RateControlConfig(), 0.1, initial_loss_factor=2.0)
    controller.calibrate(0.05)  # no running rate yet: nothing to compare with
    assert float(controller.held_out_ratio) == 1.0
    controller.update(0.2)
    controller.calibrate(0.18)
    assert float(controller.held_out_ratio) == pytest.approx(0.9)
    controller.calibrate(0.001)  # an absurd measurement moves ρ at most to its bound
    assert float(controller.held_out_ratio) == pytest.approx(0.5)
    controller.calibrate(float("nan"))
    assert float(controller.held_out_ratio) == pytest.approx(0.5)


def test_a_checkpoint_from_before_the_calibration_loads_with_ratio_one() -> None:
    old = RateController(RateControlConfig(), 0.1, initial_loss_factor=2.0)
    old.update(0.3)
    state = {k: v for k, v in old.state_dict().items() if k != "held_out_ratio"}
    new = RateController(RateControlConfig(), 0.1, initial_loss_factor=1.0)
    new.held_out_ratio.fill_(0.7)
    new.load_state_dict({k: v for k, v in state.items() if k != "slow_rate_average"})
    assert float(new.held_out_ratio) == 1.0 and torch.equal(new.rate_average, old.rate_average)
    assert torch.equal(new.slow_rate_average, old.rate_average)  # r̃ starts at the old r̄


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
    first.calibrate(0.14)
    second.load_state_dict(first.state_dict())
    assert torch.equal(second.held_out_ratio, first.held_out_ratio)


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


def test_training_evaluations_calibrate_the_controller(tmp_path: Path) -> None:
    """In a real (tiny) run the held-out evaluation sets ρ, which the next steps log."""
    run = tmp_path / "run"
    arguments = ["train-autoencoder", "--preset", "tiny", "--run-dir", str(run)]
    arguments += ["--target-bits-per-pixel", "0.1"]
    for setting in ("train.max_steps=6", "train.eval_every=3", "train.log_every=1"):
        arguments += ["--set", setting]
    assert main([*arguments, "--set", "model.rate_warmup_steps=0"]) == 0
    rows = read_metrics(run)
    train = {r["step"]: r for r in rows if r["split"] == "train"}
    held_out = next(r["bits_per_pixel"] for r in rows if r["split"] == "eval" and r["step"] == 3)
    assert train[1]["rate_held_out_ratio"] == train[3]["rate_held_out_ratio"] == 1.0
    # ρ from the step-3 evaluation: its held-out rate over r̃ after step 3 (within ρ's bounds)
    expected = min(max(held_out / train[3]["rate_slow_average_bits_per_pixel"], 0.5), 2.0)
    assert train[4]["rate_held_out_ratio"] == pytest.approx(expected, rel=1e-4)
