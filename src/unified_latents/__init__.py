"""Unified Latents (UL): autoencoders with a diffusion prior and a diffusion decoder."""

__version__ = "0.1.0"
