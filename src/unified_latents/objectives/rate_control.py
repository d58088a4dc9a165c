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


@dataclass(frozen=True, kw_only=True)
class RateControlConfig:
    gain: float = 0.002  # g: change of ln c_lf per step per unit of ln-rate error
    max_step: float = 0.01  # Δ: largest |change of ln c_lf| per step
    averaging_steps: int = 100  # window of the moving average r̄
    loss_factor_min: float = 0.1
    loss_factor_max: float = 30.0

    def __post_init__(self) -> None:
        if not (self.gain > 0 and self.max_step > 0 and self.averaging_steps >= 1):
            raise ValueError("rate_control: gain and max_step must be > 0, averaging_steps ≥ 1")
        if not 0 < self.loss_factor_min < self.loss_factor_max:
            raise ValueError("rate_control: need 0 < loss_factor_min < loss_factor_max")


class RateController(nn.Module):
    """The loop's state as buffers: ln c_lf, r̄ (bits/pixel; −1 until the first update)."""

    log_loss_factor: Tensor
    rate_average: Tensor

    def __init__(self, config: RateControlConfig, target: float, initial_loss_factor: float):
        super().__init__()
        if not target > 0:
            raise ValueError(f"target_bits_per_pixel must be positive, got {target}")
        low, high = config.loss_factor_min, config.loss_factor_max
        if not low <= initial_loss_factor <= high:
            raise ValueError(
                f"loss_factor {initial_loss_factor} is outside the controller's bounds "
                f"[{low}, {high}] (model.rate_control.loss_factor_min/max)"
            )
        self.config, self.target = config, target
        self.register_buffer("log_loss_factor", torch.tensor(math.log(initial_loss_factor)))
        self.register_buffer("rate_average", torch.tensor(-1.0))

    @property
    def loss_factor(self) -> Tensor:
        """c_lf now (a scalar tensor, no gradient)."""
        return self.log_loss_factor.exp()

    @torch.no_grad()
    def update(self, bits_per_pixel: Tensor | float) -> None:
        """Fold one training batch's mean bits/pixel into r̄, then take one control step."""
        rate = torch.as_tensor(bits_per_pixel, dtype=torch.float32).to(self.rate_average)
        if not bool(torch.isfinite(rate)) or float(rate) <= 0:
            return  # a non-finite or empty batch says nothing about the rate
        if float(self.rate_average) < 0:
            self.rate_average.copy_(rate)
        else:
            self.rate_average.lerp_(rate, 1.0 / self.config.averaging_steps)
        error = torch.log(self.rate_average) - math.log(self.target)
        step = (-self.config.gain * error).clamp(-self.config.max_step, self.config.max_step)
        low, high = math.log(self.config.loss_factor_min), math.log(self.config.loss_factor_max)
        self.log_loss_factor.copy_((self.log_loss_factor + step).clamp(low, high))
