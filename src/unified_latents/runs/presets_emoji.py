"""Text-to-image presets on the emoji caption dataset (`bash scripts/install-emoji.sh`).

    ul train-autoencoder --preset emoji            # RGB 32×32 → 8×8×4 latents, sized for 2 CPUs
    ul train-base --autoencoder runs/autoencoder-emoji --preset emoji-text
    ul sample --run runs/base-emoji-text --prompt "cat face, in twitter style"

Baselines on the same data: `--preset kl-vae-emoji` (and the other stage-1 ablations,
`<ablation>-emoji`) for stage 1, `--preset pixel-emoji-text` for pixel-space diffusion with the
same base model and conditioning.
"""

from __future__ import annotations

from dataclasses import replace

from unified_latents.data.datasets import DataConfig
from unified_latents.networks.conditioning import ConditionConfig
from unified_latents.runs.autoencoder import AutoencoderRunConfig
from unified_latents.runs.base_model import BaseRunConfig


def emoji_data(image_size: int) -> DataConfig:
    return DataConfig(name="emoji-captions", image_size=image_size, channels=3)


def autoencoder_emoji(fashion_mnist: AutoencoderRunConfig) -> AutoencoderRunConfig:
    """The Fashion-MNIST autoencoder on RGB 32×32 emoji (the same 8×8×4 latent and budget);
    its test split is the held-out concepts (data/datasets.py)."""
    return replace(fashion_mnist, data=emoji_data(32))


def autoencoder_emoji_64(fashion_mnist: AutoencoderRunConfig) -> AutoencoderRunConfig:
    """64×64 emoji (native size): one more 2× stage in encoder and decoder keeps the 8×8×4
    latent, so stage 2 costs what it costs at 32×32. The decoder weighting shift is
    2·log(512/64) ≈ 4.2 instead of 32×32's 5.5 (`autoencoder_fashion_mnist` explains it) [C]."""
    model = fashion_mnist.model
    encoder = replace(model.encoder, channels=(32, 64, 128))
    decoder = replace(model.decoder, channels=(32, 64, 128))
    return replace(
        fashion_mnist,
        data=emoji_data(64),
        model=replace(model, encoder=encoder, decoder=decoder, decoder_bias=4.2),
    )


def text_tokens(config: BaseRunConfig) -> BaseRunConfig:
    """`config` conditioned on caption tokens (cross-attention, networks/text_tokens.py)."""
    condition = ConditionConfig(kind="text-tokens", text_tokens=24)
    return replace(config, model=replace(config.model, condition=condition))


def base_emoji_text(fashion_mnist: BaseRunConfig) -> BaseRunConfig:
    """The Fashion-MNIST base model (width 192, depth 2) with token-level text conditioning on
    emoji captions: 24 tokens hold a name, three keywords and a style; 10% caption dropout gives
    classifier-free guidance its unconditional branch. Sample grids: a row of 8 per
    fixed caption, one caption per emoji category."""
    config = text_tokens(fashion_mnist)
    return replace(config, eval=replace(config.eval, samples_per_class=8))
