"""Noise schedules λ(t) on t ∈ [0, 1], strictly decreasing: t = 0 is the least noisy end (spec §3).

A schedule is a frozen description; `logsnr(t)`, `dlogsnr_dt(t)` and `t_from_logsnr(λ)` are closed
forms (no autograd), computed in fp32. With ELBO weighting the diffusion loss depends only on the
endpoints; the shape only changes the Monte-Carlo variance (spec §3).

Kinds:
- ``cosine``: the truncated cosine, λ(t) = −2 log tan(t_min + t (t_max − t_min)) with
  t_min = atan(e^{−λmax/2}), t_max = atan(e^{−λmin/2}).
- ``shifted-cosine``: the same curve moved by ``shift`` (simple diffusion's resolution shift
  2·log(d_ref/d_img)) while keeping the endpoints: λ(t) = cos_{[λmin−s, λmax−s]}(t) + s.
- ``linear``: linear in λ, λ(t) = λmax + t (λmin − λmax).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

ScheduleKind = Literal["cosine", "shifted-cosine", "linear"]


@dataclass(frozen=True, kw_only=True)
class LogSNRSchedule:
    kind: ScheduleKind = "cosine"
    logsnr_min: float = -15.0
    logsnr_max: float = 5.0
    shift: float = 0.0  # only for "shifted-cosine"

    def __post_init__(self) -> None:
        if not self.logsnr_min < self.logsnr_max:
            raise ValueError(
                f"schedule needs logsnr_min < logsnr_max, got {self.logsnr_min}, {self.logsnr_max}"
            )
        if self.kind not in ("cosine", "shifted-cosine", "linear"):
            raise ValueError(f"unknown schedule kind {self.kind!r}")

    def _cosine_bounds(self) -> tuple[float, float, float]:
        s = self.shift if self.kind == "shifted-cosine" else 0.0
        t_min = math.atan(math.exp(-(self.logsnr_max - s) / 2))
        t_max = math.atan(math.exp(-(self.logsnr_min - s) / 2))
        return t_min, t_max, s

    def logsnr(self, t: Tensor) -> Tensor:
        t = t.float()
        if self.kind == "linear":
            return self.logsnr_max + t * (self.logsnr_min - self.logsnr_max)
        t_min, t_max, s = self._cosine_bounds()
        return -2.0 * torch.log(torch.tan(t_min + t * (t_max - t_min))) + s

    def dlogsnr_dt(self, t: Tensor) -> Tensor:
        """dλ/dt < 0. For the cosine family: −2 (t_max − t_min) / (sin u cos u) = −4Δ / sin 2u."""
        t = t.float()
        if self.kind == "linear":
            return torch.full_like(t, self.logsnr_min - self.logsnr_max)
        t_min, t_max, _ = self._cosine_bounds()
        u = t_min + t * (t_max - t_min)
        return -4.0 * (t_max - t_min) / torch.sin(2.0 * u)

    def t_from_logsnr(self, logsnr: Tensor) -> Tensor:
        logsnr = logsnr.float()
        if self.kind == "linear":
            return (logsnr - self.logsnr_max) / (self.logsnr_min - self.logsnr_max)
        t_min, t_max, s = self._cosine_bounds()
        return (torch.atan(torch.exp(-(logsnr - s) / 2)) - t_min) / (t_max - t_min)
