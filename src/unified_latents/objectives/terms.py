"""Named per-example loss terms: what every objective returns (units in the names)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class LossTerms:
    """Base for objective outputs: `loss` is the per-example training loss [B] (nats); every
    other field is a named per-example term [B]. `means()` gives floats for logging."""

    loss: Tensor

    def means(self) -> dict[str, float]:
        return {
            field.name: float(getattr(self, field.name).detach().float().mean())
            for field in dataclasses.fields(self)
        }
