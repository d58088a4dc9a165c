"""Rate targeting: a feedback loop that sets the loss factor c_lf so the latent carries a chosen
number of bits per pixel (issue 19; not in the paper, our design [D]).

UL's rate is explicit (the prior's bound L_z), and it rises with c_lf: the loss L_z + c_lf·L_x
makes a latent bit cost 1 and a nat of distortion c_lf (UL-SPEC §7). Measured on Fashion-MNIST
(docs/results.md §2), bits/pixel grows roughly like c_lf^p with p ≈ 0.7–1.6. The controller
therefore works in log space, as an integral controller on

    e_k = ln r̄_k − ln R,      ln c_{k+1} = clip(ln c_k − clip(g·e_k, ±Δ), ln c_min, ln c_max)

where r̄ is an exponential moving average (window `averaging_steps`) of the training batches'
bits/pixel (the prior's bound, the same quantity as the held-out figure), R the target, g the
gain and Δ the largest change per step. Integral action drives the steady-state error to zero
for any monotone rate curve; with the plant's log-log slope p the loop's time constant is about
1/(g·p) steps (≈ 500 steps for the defaults and p = 1). Settling time, measured on a synthetic
plant (rate relaxing towards 0.1·c_lf^p with a 200-step lag, 10% batch noise, start c_lf = 1.5,
targets 0.05–0.2 bits/pixel, p = 0.7–1.6): r̄ stays within ±5% of the target from step
1,400–2,400 on (`tests/objectives/test_rate_control.py` checks the closed loop). How fast a
real encoder follows c_lf is not measured yet.

**Held-out calibration (a cascade).** The goal is the *held-out* rate of the EMA model, which
evaluation, sampling and every report use, and that is not what the training batches measure:
the EMA weights' prior gives a tighter bound. Measured on Fashion-MNIST at step 5,000 (c_lf 3.0,
512 training images): 0.174 bits/pixel with the online weights, 0.159 with the EMA weights; a
run steered on r̄ alone to 0.04 ended at 0.0375 on 1,000 test images (−6 %). So each evaluation
during training (`train.eval_every`) calls `calibrate(b)`: the ratio ρ = b / r̃ of the EMA
model's held-out bits/pixel to a *slow* running training rate r̃ (bounded to [0.5, 2]) is kept,
and the fast loop regulates the held-out estimate ρ·r̄ instead of r̄:

    e_k = ln(ρ·r̄_k) − ln R.

r̃ averages the training rate with the EMA weights' own schedule (training/ema.py: decay
min(d, (1 + n)/(10 + n)) at training step n, d = 1 − 1/`calibration_window`, so set
`calibration_window` to 1/(1 − train.ema_decay), 1,000 for the presets): the EMA model's rate
lags the online rate as the EMA weights do, so b and r̃ lag alike and ρ measures only the
EMA-vs-online and test-vs-train gaps, even while the rate still moves. History, measured
(docs/results.md §10, 5,000 steps): dividing by the fast r̄ gave +6.8 % and +6.9 % for targets
0.1 and 0.16 but +20 % for 0.04, where the rate was still climbing after an undershoot; a fixed
1,000-step window for r̃ was worse at 0.04, because before step ~9,000 the EMA's warm-up makes
its window (10 + n)/9 steps, about 220 at step 2,000: r̃ lagged far behind a falling rate, ρ hit
its lower bound and the loop overshot. The step n is counted as `start_step` (the model's rate
warm-up, after which the controller acts) plus the controller's updates, one per training
forward (so with gradient accumulation A the schedule runs A times faster than the EMA's). ρ
changes slowly, so this outer loop runs at the evaluation cadence;
`rate_control.held_out_calibration=false` regulates r̄ alone.

The controller acts only once the optional rate warm-up is over, takes one step per training
forward (per micro-batch under gradient accumulation; under DDP rank 0's state
is broadcast with the other buffers), and keeps its state (c_lf, r̄) in buffers, so checkpoints
and exact resumption carry it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from unified_latents.training.ema import ema_decay_at

RATIO_BOUNDS = (0.5, 2.0)  # ρ: the held-out ÷ training rate ratio the calibration accepts


@dataclass(frozen=True, kw_only=True)
class RateControlConfig:
    gain: float = 0.002  # g: change of ln c_lf per step per unit of ln-rate error
    max_step: float = 0.01  # Δ: largest |change of ln c_lf| per step
    averaging_steps: int = 100  # window of the moving average r̄
    loss_factor_min: float = 0.1
    loss_factor_max: float = 30.0
    held_out_calibration: bool = True  # steer the EMA model's held-out rate (ρ·r̄), see above
    calibration_window: int = 1000  # r̃'s longest window: 1/(1 − train.ema_decay), see above

    def __post_init__(self) -> None:
        windows = min(self.averaging_steps, self.calibration_window)
        if not (self.gain > 0 and self.max_step > 0 and windows >= 1):
            raise ValueError(
                "rate_control: gain and max_step must be > 0, averaging_steps and "
                "calibration_window ≥ 1"
            )
        if not 0 < self.loss_factor_min < self.loss_factor_max:
            raise ValueError("rate_control: need 0 < loss_factor_min < loss_factor_max")


class RateController(nn.Module):
    """The loop's state as buffers: ln c_lf, r̄ and r̃ (bits/pixel; −1 until the first update),
    the held-out ratio ρ (1 until the first calibration) and the number of updates so far.
    `start_step`: the training step of the first update (the end of the rate warm-up)."""

    log_loss_factor: Tensor
    rate_average: Tensor
    slow_rate_average: Tensor
    held_out_ratio: Tensor
    updates: Tensor

    def __init__(
        self,
        config: RateControlConfig,
        target: float,
        initial_loss_factor: float,
        start_step: int = 0,
    ):
        super().__init__()
        if not target > 0:
            raise ValueError(f"target_bits_per_pixel must be positive, got {target}")
        low, high = config.loss_factor_min, config.loss_factor_max
        if not low <= initial_loss_factor <= high:
            raise ValueError(
                f"loss_factor {initial_loss_factor} is outside the controller's bounds "
                f"[{low}, {high}] (model.rate_control.loss_factor_min/max)"
            )
        self.config, self.target, self.start_step = config, target, start_step
        self.register_buffer("log_loss_factor", torch.tensor(math.log(initial_loss_factor)))
        self.register_buffer("rate_average", torch.tensor(-1.0))
        self.register_buffer("slow_rate_average", torch.tensor(-1.0))
        self.register_buffer("held_out_ratio", torch.tensor(1.0))
        self.register_buffer("updates", torch.tensor(0, dtype=torch.long))

    @property
    def loss_factor(self) -> Tensor:
        """c_lf now (a scalar tensor, no gradient)."""
        return self.log_loss_factor.exp()

    @torch.no_grad()
    def update(self, bits_per_pixel: Tensor | float) -> None:
        """Fold one training batch's mean bits/pixel into r̄ and r̃, then take one control step."""
        rate = torch.as_tensor(bits_per_pixel, dtype=torch.float32).to(self.rate_average)
        if not bool(torch.isfinite(rate)) or float(rate) <= 0:
            return  # a non-finite or empty batch says nothing about the rate
        train_step = self.start_step + int(self.updates)
        slow_decay = ema_decay_at(train_step, 1.0 - 1.0 / self.config.calibration_window)
        weights = (1.0 / self.config.averaging_steps, 1.0 - slow_decay)
        averages = (self.rate_average, self.slow_rate_average)
        for average, weight in zip(averages, weights, strict=True):
            if float(average) < 0:
                average.copy_(rate)
            else:
                average.lerp_(rate, weight)
        self.updates.add_(1)
        error = torch.log(self.rate_average * self.held_out_ratio) - math.log(self.target)
        step = (-self.config.gain * error).clamp(-self.config.max_step, self.config.max_step)
        low, high = math.log(self.config.loss_factor_min), math.log(self.config.loss_factor_max)
        self.log_loss_factor.copy_((self.log_loss_factor + step).clamp(low, high))

    @torch.no_grad()
    def calibrate(self, held_out_bits_per_pixel: float) -> None:
        """Set ρ = held-out ÷ r̃ from a measurement of the EMA model (no-op before the first
        update, for a non-finite value, or with `held_out_calibration` off)."""
        rate, average = float(held_out_bits_per_pixel), float(self.slow_rate_average)
        if not self.config.held_out_calibration or average <= 0:
            return
        if not (math.isfinite(rate) and rate > 0):
            return
        self.held_out_ratio.fill_(min(max(rate / average, RATIO_BOUNDS[0]), RATIO_BOUNDS[1]))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        """Older checkpoints: without ρ it starts at 1; without r̃ it starts at their r̄; without
        an update count at 0."""
        state_dict.setdefault(prefix + "held_out_ratio", torch.tensor(1.0))
        state_dict.setdefault(prefix + "updates", torch.tensor(0, dtype=torch.long))
        if prefix + "rate_average" in state_dict:
            state_dict.setdefault(prefix + "slow_rate_average", state_dict[prefix + "rate_average"])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
