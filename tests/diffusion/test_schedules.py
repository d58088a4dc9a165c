"""λ(t) schedules (UL-SPEC §3): endpoints, monotonicity, derivative and inverse."""

from __future__ import annotations

import pytest
import torch

from unified_latents.diffusion.schedules import LogSNRSchedule

SCHEDULES = [
    LogSNRSchedule(kind="cosine", logsnr_min=-15.0, logsnr_max=5.0),  # latent schedule
    LogSNRSchedule(kind="cosine", logsnr_min=-15.0, logsnr_max=15.0),  # pixel schedule
    LogSNRSchedule(kind="shifted-cosine", logsnr_min=-15.0, logsnr_max=15.0, shift=-2.7726),
    LogSNRSchedule(kind="shifted-cosine", logsnr_min=-10.0, logsnr_max=5.0, shift=1.5),
    LogSNRSchedule(kind="linear", logsnr_min=-15.0, logsnr_max=5.0),
]
IDS = [f"{s.kind}[{s.logsnr_min:g},{s.logsnr_max:g}]shift={s.shift:g}" for s in SCHEDULES]

# fp32 tolerance on λ: near t = 1 the cosine evaluates tan(u) at u ≈ π/2 − e^{λmin/2}, where an fp32
# rounding of u (~1e-7) moves tan by a relative ~1e-7 · e^{−λmin/2} ≈ 2e-4, i.e. λ by ~4e-4.
LOGSNR_ATOL = 2e-3


@pytest.mark.parametrize("schedule", SCHEDULES, ids=IDS)
def test_endpoints(schedule: LogSNRSchedule) -> None:
    logsnr = schedule.logsnr(torch.tensor([0.0, 1.0]))
    assert logsnr.dtype == torch.float32
    assert logsnr[0].item() == pytest.approx(schedule.logsnr_max, abs=LOGSNR_ATOL)
    assert logsnr[1].item() == pytest.approx(schedule.logsnr_min, abs=LOGSNR_ATOL)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=IDS)
def test_strictly_decreasing(schedule: LogSNRSchedule) -> None:
    t = torch.linspace(0.0, 1.0, 10_001)
    logsnr = schedule.logsnr(t)
    assert bool(torch.isfinite(logsnr).all())
    assert bool((logsnr[1:] < logsnr[:-1]).all())
    assert bool((schedule.dlogsnr_dt(t) < 0).all())


@pytest.mark.parametrize("schedule", SCHEDULES, ids=IDS)
def test_derivative_matches_autograd(schedule: LogSNRSchedule) -> None:
    t = torch.linspace(0.0, 1.0, 201).requires_grad_(True)
    (autograd,) = torch.autograd.grad(schedule.logsnr(t).sum(), t)
    torch.testing.assert_close(schedule.dlogsnr_dt(t.detach()), autograd, rtol=2e-3, atol=1e-3)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=IDS)
def test_derivative_integrates_to_the_endpoint_difference(schedule: LogSNRSchedule) -> None:
    """∫₀¹ dλ/dt dt = λmin − λmax: what makes the ELBO integral depend on the endpoints only."""
    t = torch.linspace(0.0, 1.0, 200_001, dtype=torch.float64)
    integral = torch.trapezoid(schedule.dlogsnr_dt(t).double(), t).item()
    assert integral == pytest.approx(schedule.logsnr_min - schedule.logsnr_max, rel=1e-4)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=IDS)
def test_t_from_logsnr_inverts_logsnr(schedule: LogSNRSchedule) -> None:
    t = torch.linspace(0.0, 1.0, 1001)
    torch.testing.assert_close(schedule.t_from_logsnr(schedule.logsnr(t)), t, rtol=0, atol=1e-5)
    logsnr = torch.linspace(schedule.logsnr_min, schedule.logsnr_max, 1001)
    recovered = schedule.logsnr(schedule.t_from_logsnr(logsnr))
    torch.testing.assert_close(recovered, logsnr, rtol=0, atol=LOGSNR_ATOL)


def test_cosine_matches_its_closed_form() -> None:
    """λ(t) = −2 log tan(t_min + t (t_max − t_min)), evaluated independently in float64."""
    schedule = LogSNRSchedule(kind="cosine", logsnr_min=-15.0, logsnr_max=5.0)
    t = torch.linspace(0.0, 1.0, 11, dtype=torch.float64)
    t_min = torch.atan(torch.exp(torch.tensor(-2.5, dtype=torch.float64)))
    t_max = torch.atan(torch.exp(torch.tensor(7.5, dtype=torch.float64)))
    expected = -2 * torch.log(torch.tan(t_min + t * (t_max - t_min)))
    torch.testing.assert_close(schedule.logsnr(t).double(), expected, rtol=0, atol=LOGSNR_ATOL)


def test_shift_moves_the_middle_but_not_the_endpoints() -> None:
    base = LogSNRSchedule(kind="cosine", logsnr_min=-15.0, logsnr_max=15.0)
    zero = LogSNRSchedule(kind="shifted-cosine", logsnr_min=-15.0, logsnr_max=15.0, shift=0.0)
    shifted = LogSNRSchedule(kind="shifted-cosine", logsnr_min=-15.0, logsnr_max=15.0, shift=-2.0)
    t = torch.linspace(0.0, 1.0, 101)
    torch.testing.assert_close(zero.logsnr(t), base.logsnr(t))
    # With λmin = −λmax the cosine passes λ = 0 at t = ½; shifting by s moves that point to ≈ s
    # (the inner, unshifted curve on [λmin − s, λmax − s] is then nearly symmetric again).
    middle = torch.tensor([0.5])
    assert base.logsnr(middle).item() == pytest.approx(0.0, abs=1e-4)
    assert shifted.logsnr(middle).item() == pytest.approx(-2.0, abs=0.05)
    assert shifted.logsnr(torch.tensor([0.0])).item() == pytest.approx(15.0, abs=LOGSNR_ATOL)


def test_linear_is_linear() -> None:
    schedule = LogSNRSchedule(kind="linear", logsnr_min=-15.0, logsnr_max=5.0)
    t = torch.linspace(0.0, 1.0, 11)
    torch.testing.assert_close(schedule.logsnr(t), 5.0 - 20.0 * t)
    torch.testing.assert_close(schedule.dlogsnr_dt(t), torch.full_like(t, -20.0))


def test_invalid_schedules_are_rejected() -> None:
    with pytest.raises(ValueError, match="logsnr_min < logsnr_max"):
        LogSNRSchedule(logsnr_min=5.0, logsnr_max=5.0)
    with pytest.raises(ValueError, match="unknown schedule kind"):
        LogSNRSchedule(kind="sqrt")  # type: ignore[arg-type]
