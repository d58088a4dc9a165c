"""Turn a network's raw output into a `Prediction(x_hat, eps_hat)` (UL-SPEC §2).

The network may run under bf16 autocast; its output is cast to fp32 and λ is always fp32, so the
conversions (which divide by α or σ) and everything downstream (losses, samplers) are fp32.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from torch import Tensor, nn

from unified_latents.diffusion.process import Prediction, eps_from_x, x_eps_from_v, x_from_eps

Parameterization = Literal["v", "eps", "x"]


class Denoiser(nn.Module):
    """Wraps a network (z_t, λ, ...) → raw output; v-prediction by default [C]."""

    def __init__(self, network: nn.Module, parameterization: Parameterization = "v") -> None:
        super().__init__()
        if parameterization not in get_args(Parameterization):
            raise ValueError(
                f"parameterization={parameterization!r}; choose one of "
                f"{', '.join(get_args(Parameterization))}"
            )
        self.network = network
        self.parameterization = parameterization

    def forward(self, z_t: Tensor, logsnr: Tensor, *args: Any, **kwargs: Any) -> Prediction:
        logsnr = logsnr.float()
        output = self.network(z_t, logsnr, *args, **kwargs).float()  # [B, ...] raw
        z_t = z_t.float()
        if self.parameterization == "v":
            return Prediction(*x_eps_from_v(z_t, logsnr, output))
        if self.parameterization == "eps":
            return Prediction(x_from_eps(z_t, logsnr, output), output)
        return Prediction(output, eps_from_x(z_t, logsnr, output))
