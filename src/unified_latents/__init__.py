"""Unified Latents (UL): autoencoders with a diffusion prior and a diffusion decoder.

import unified_latents as ul
ae = ul.load("runs/autoencoder-fashion-mnist")   # see unified_latents.api
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from unified_latents.version import __version__

__all__ = ["Autoencoder", "Generator", "RunError", "__version__", "load"]

if TYPE_CHECKING:
    from unified_latents.api import Autoencoder, Generator, load
    from unified_latents.runs.directory import RunError


def __getattr__(name: str) -> Any:
    """The API is imported on first use, so `import unified_latents` (and the CLI) stay fast."""
    if name in ("Autoencoder", "Generator", "load"):
        from unified_latents import api

        return getattr(api, name)
    if name == "RunError":
        from unified_latents.runs.directory import RunError

        return RunError
    raise AttributeError(f"module 'unified_latents' has no attribute {name!r}")
