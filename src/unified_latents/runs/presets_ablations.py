"""The paper's stage-1 baselines and ablations (UL-SPEC §10) as changes of a UL preset: each makes
exactly one change, so data, encoder, latent shape, optimizer and budget match the UL run they are
compared with (`--preset kl-vae`, `ul-mse-decoder`, ...; `<name>-tiny`, `<name>-emoji`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from unified_latents.objectives.autoencoder import ObjectiveConfig
from unified_latents.runs.autoencoder import AutoencoderRunConfig


def kl_vae(config: AutoencoderRunConfig) -> AutoencoderRunConfig:
    """Stable-Diffusion-style KL autoencoder: Σ|x − x̂| + 1e-6 · KL, conv decoder (kl_vae.py)."""
    objective = ObjectiveConfig(kind="kl-vae", kl_weight=1e-6, reconstruction_loss="l1")
    return replace(config, objective=objective)


def ul_mse_decoder(config: AutoencoderRunConfig) -> AutoencoderRunConfig:
    """Diffusion prior + deterministic decoder with a c_lf-compatible squared error."""
    return replace(config, objective=ObjectiveConfig(kind="ul-mse-decoder"))


def ul_normal_prior(config: AutoencoderRunConfig) -> AutoencoderRunConfig:
    """N(0, I) prior (closed-form KL with the σ_0 noise) + diffusion decoder."""
    return replace(config, objective=ObjectiveConfig(kind="ul-normal-prior"))


def ul_lambda10(config: AutoencoderRunConfig) -> AutoencoderRunConfig:
    """λ_0 = 10: too little encoder noise (σ_0 ≈ 0.0067); otherwise plain UL."""
    return replace(config, model=replace(config.model, logsnr_0=10.0))


def ul_stopgrad_prior(config: AutoencoderRunConfig) -> AutoencoderRunConfig:
    """Prior on stop-grad latents; the encoder gets 0.01 · KL(q(z_0|x) ‖ N(0, I)) instead [C]."""
    return replace(config, objective=ObjectiveConfig(kind="ul-stopgrad-prior", kl_weight=0.01))


ABLATIONS: dict[str, Callable[[AutoencoderRunConfig], AutoencoderRunConfig]] = {
    "kl-vae": kl_vae,
    "ul-mse-decoder": ul_mse_decoder,
    "ul-normal-prior": ul_normal_prior,
    "ul-lambda10": ul_lambda10,
    "ul-stopgrad-prior": ul_stopgrad_prior,
}


def derived(
    change: Callable[[AutoencoderRunConfig], AutoencoderRunConfig],
    start: Callable[[], AutoencoderRunConfig],
) -> Callable[[], AutoencoderRunConfig]:
    return lambda: change(start())
