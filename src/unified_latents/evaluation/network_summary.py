"""Parameter counts and forward FLOPs per image of a run config's networks, without weights.

The networks are built on the `meta` device (shapes only, no memory, no initialisation work), so
this is instant even at paper scale; `FlopCounterMode` counts the matrix products, convolutions
and attention of one forward on meta tensors (metrics/flops.py: 2 FLOPs per multiply-accumulate,
elementwise work not counted). `ul train-autoencoder/train-base --dry-run` prints the table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from unified_latents.evaluation.compute import call_flops
from unified_latents.networks.denoiser import Denoiser
from unified_latents.objectives.autoencoder import Autoencoder
from unified_latents.objectives.latent_diffusion import BaseModelConfig, LatentDiffusion

META = torch.device("meta")


@dataclass(frozen=True)
class NetworkCost:
    name: str
    parameters: int
    forward_flops_per_image: float

    def row(self) -> str:
        return (
            f"{self.name:<8} {self.parameters / 1e6:>10.4g} M params "
            f"{self.forward_flops_per_image / 1e9:>10.4g} GFLOPs/image (forward)"
        )


def count_parameters(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def _network_cost(name: str, module: nn.Module, call: Callable[[], object]) -> NetworkCost:
    return NetworkCost(name, count_parameters(module), call_flops(call))


def autoencoder_costs(build: Callable[[], Autoencoder]) -> list[NetworkCost]:
    """Encoder, prior (where the objective has one) and decoder of the stage-1 model `build`
    makes (called on the meta device)."""
    with META:
        model = build()
    x = torch.zeros(1, *model.image_shape, device=META)  # [1, C, H, W] (or [1, C, T, H, W])
    z = torch.zeros(1, *model.latent_shape, device=META)  # [1, c, h, w] (or [1, c, T', h, w])
    logsnr = torch.zeros(1, device=META)
    encoder, decoder = model.encoder, model.decoder
    assert isinstance(encoder, nn.Module) and isinstance(decoder, nn.Module)
    costs = [_network_cost("encoder", encoder, lambda: encoder(x))]
    prior = getattr(model, "prior", None)
    if isinstance(prior, Denoiser):
        costs.append(_network_cost("prior", prior, lambda: prior(z, logsnr)))
    if isinstance(decoder, Denoiser):  # diffusion decoder (x_t, λ, z)
        costs.append(_network_cost("decoder", decoder, lambda: decoder(x, logsnr, z)))
    else:  # deterministic decoder z → x (baselines)
        costs.append(_network_cost("decoder", decoder, lambda: decoder(z)))
    return costs


def latent_shape(build: Callable[[], Autoencoder]) -> tuple[int, ...]:
    """(channels, height, width) of the latent of the stage-1 model `build` makes (clips:
    (channels, frames, height, width))."""
    with META:
        model = build()
    return model.latent_shape


def base_costs(config: BaseModelConfig, latent_shape: tuple[int, ...]) -> list[NetworkCost]:
    """A base model of `config` on latents (or images) of `latent_shape` (c, h, w)."""
    with META:
        model = LatentDiffusion(config, latent_shape, logsnr_max=5.0)
    z = torch.zeros(1, *latent_shape, device=META)
    logsnr = torch.zeros(1, device=META)
    cond: Tensor | None = None
    condition = config.condition
    if condition.kind == "class":
        cond = torch.zeros(1, dtype=torch.long, device=META)
    elif condition.kind == "text":
        cond = torch.zeros(1, condition.text_dim, device=META)
    elif condition.kind == "text-tokens":
        cond = torch.zeros(1, condition.text_tokens, condition.text_dim, device=META)
    denoiser = model.denoiser
    return [_network_cost("base", denoiser, lambda: denoiser(z, logsnr, cond))]


def format_costs(costs: list[NetworkCost], note: str = "") -> str:
    lines = [cost.row() for cost in costs]
    total = sum(cost.parameters for cost in costs)
    if len(costs) > 1:
        lines.append(f"{'total':<8} {total / 1e6:>10.1f} M params")
    header = "networks (built on the meta device; FLOPs = 2 × multiply-accumulates)"
    return "\n".join([header + (f"; {note}" if note else ""), *lines])


def costs_record(costs: list[NetworkCost]) -> dict[str, Any]:
    """name → {parameters, forward_flops_per_image}, for the dry run's JSON."""
    return {cost.name: {k: v for k, v in asdict(cost).items() if k != "name"} for cost in costs}
