"""Video presets (issue 17): UL on clips [C, T, H, W] (networks/video.py) and base models on
their latents, frame-conditioned (the paper's Kinetics protocol: 5 context frames of 16) or not.

    ul train autoencoder --preset moving-digits        # 16 × 32×32 moving Fashion-MNIST clips
    ul reconstruct --run runs/autoencoder-moving-digits  # filmstrip + GIF of clips and rebuilds
    ul train base --autoencoder runs/autoencoder-moving-digits --preset moving-digits-predict
    ul train autoencoder --preset video-folder --set data.root=DIR   # your own mp4/avi clips
    ul train autoencoder --preset kl-vae-moving-digits   # the per-frame KL-VAE baseline

The image presets' networks run per frame (8×8×4 latents per 32×32 frame); the prior's and the
decoder's transformers attend over space and time (factorised by default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from unified_latents.data.datasets import DataConfig
from unified_latents.networks.conditioning import ConditionConfig
from unified_latents.networks.video import VideoConfig
from unified_latents.networks.vit import ViTConfig
from unified_latents.objectives.latent_diffusion import BaseModelConfig
from unified_latents.runs.autoencoder import AutoencoderEvalConfig, AutoencoderRunConfig
from unified_latents.runs.base_model import BaseEvalConfig, BaseRunConfig
from unified_latents.runs.presets_ablations import kl_vae
from unified_latents.runs.presets_common import (
    DEMO_OPTIM,
    TINY_OPTIM,
    demo_training,
    tiny_networks,
    tiny_training,
    tiny_vit,
)
from unified_latents.training.config import TrainConfig

# The tiny presets' training (runs/presets_tiny.py) in steps of 4 clips: 6 steps, for tests.
TINY_TRAINING = replace(tiny_training(max_steps=6, eval_every=3), batch_size=4, log_every=2)


# Sized from finished runs (2026-12-07, an AVX512 CPU without native bf16, fp32; 2,500-step
# runs in docs/results.md §11): the moving-digits autoencoder took 0.86 s/step with 2 threads on
# an otherwise idle machine and 1.3–1.5 s/step with one thread beside another job; the
# frame-prediction base model 1.0–1.2 s/step with one thread beside another job. 4,000 steps are
# therefore about an hour per run on 2 idle cores (the 8,000 of the first sizing were two).
VIDEO_STEPS = 4000


def video_training(batch_size: int) -> TrainConfig:
    """The demo-scale video runs' training settings."""
    return demo_training(batch_size, max_steps=VIDEO_STEPS)


def autoencoder_moving_digits(image: AutoencoderRunConfig) -> AutoencoderRunConfig:
    """Moving Fashion-MNIST digits, 16 frames of 32×32, one 8×8×4 latent per frame, from the
    Fashion-MNIST autoencoder preset `image`.

    Its networks, with a deeper prior (4 blocks: 2 within frames, 2 across) and a narrower,
    2-block decoder transformer; a batch of 8 clips is 128 frames. `decoder_bias`,
    `loss_factor` and the rate warm-up are the image preset's choices [C] (runs/presets.py)."""
    model = image.model
    return replace(
        image,
        data=DataConfig(name="moving-digits", image_size=32, channels=1, num_frames=16),
        model=replace(
            model,
            prior=replace(model.prior, depth=4),
            decoder=replace(model.decoder, transformer_width=96, transformer_depth=2),
            video=VideoConfig(temporal_downsample=1, attention="factorised"),
        ),
        train=video_training(batch_size=8),
        eval=AutoencoderEvalConfig(
            num_images=64, rate_passes=2, num_reconstructions=8, decoder_steps=32, batch_size=16
        ),
    )


def autoencoder_video_folder(image: AutoencoderRunConfig) -> AutoencoderRunConfig:
    """The moving-digits model on RGB clips from a folder of videos (`--set data.root=DIR`):
    16 frames of 32×32, random crops, every second source frame."""
    base = autoencoder_moving_digits(image)
    data = DataConfig(
        name="video-folder",
        image_size=32,
        channels=3,
        num_frames=16,
        frame_stride=2,
        clips_per_video=8,
        crop="random-resized",
        crop_min_area=0.5,
        holdout_size=2,
    )
    return replace(base, data=data)


def autoencoder_moving_digits_tiny(image: AutoencoderRunConfig) -> AutoencoderRunConfig:
    """4-frame clips and toy networks: trains in seconds, for tests."""
    base = autoencoder_moving_digits(image)
    model = tiny_networks(channels=(8, 16), depth=2, patch_size=2)
    model = replace(model, video=VideoConfig(temporal_downsample=2))
    return replace(
        base,
        data=replace(base.data, num_frames=4, num_clips=64, holdout_size=16),
        model=model,
        optim=TINY_OPTIM,
        train=TINY_TRAINING,
        eval=AutoencoderEvalConfig(
            num_images=8, rate_passes=1, num_reconstructions=4, decoder_steps=2, batch_size=8
        ),
    )


def base_moving_digits_predict() -> BaseRunConfig:
    """Frame prediction on moving-digits latents: 5 context frames of 16, the rest generated
    (16 latent frames of 8×8 tokens, factorised attention; context dropped 10% for guidance)."""
    return BaseRunConfig(
        model=BaseModelConfig(
            network=ViTConfig(width=128, depth=4, heads=4, mlp_ratio=2.0, mlp_activation="gelu"),
            condition=ConditionConfig(kind="none"),
            latent_normalization="scalar",
            context_frames=5,
        ),
        optim=DEMO_OPTIM,
        train=video_training(batch_size=16),
        eval=BaseEvalConfig(
            num_latents=200, base_steps=64, decoder_steps=32, guidance=1.0, batch_size=16
        ),
    )


def base_moving_digits_uncond() -> BaseRunConfig:
    """Unconditional clips: the same base model without context."""
    base = base_moving_digits_predict()
    return replace(base, model=replace(base.model, context_frames=0))


def base_moving_digits_tiny() -> BaseRunConfig:
    """For tests on a `moving-digits-tiny` autoencoder (2 latent frames: 1 context, 1 generated)."""
    base = base_moving_digits_predict()
    return replace(
        base,
        model=replace(base.model, network=tiny_vit(depth=2), context_frames=1),
        optim=TINY_OPTIM,
        train=TINY_TRAINING,
        eval=BaseEvalConfig(
            num_latents=8, elbo_passes=1, base_steps=2, decoder_steps=2, batch_size=8
        ),
    )


VIDEO_BASE_PRESETS = {
    "moving-digits-predict": base_moving_digits_predict,
    "moving-digits-uncond": base_moving_digits_uncond,
    "moving-digits-tiny": base_moving_digits_tiny,
}


def video_autoencoder_presets(
    image: Callable[[], AutoencoderRunConfig],
) -> dict[str, Callable[[], AutoencoderRunConfig]]:
    """The video autoencoder presets, derived from the image preset `image` makes."""
    return {
        "moving-digits": lambda: autoencoder_moving_digits(image()),
        "moving-digits-tiny": lambda: autoencoder_moving_digits_tiny(image()),
        "video-folder": lambda: autoencoder_video_folder(image()),
        # the Stable-Diffusion-style baseline on the same clips: per-frame KL autoencoder
        "kl-vae-moving-digits": lambda: kl_vae(autoencoder_moving_digits(image())),
        "kl-vae-moving-digits-tiny": lambda: kl_vae(
            per_frame(autoencoder_moving_digits_tiny(image()))
        ),
    }


def per_frame(config: AutoencoderRunConfig) -> AutoencoderRunConfig:
    """`config` with one latent per frame (what the per-frame KL-VAE baseline needs)."""
    return replace(config, model=replace(config.model, video=VideoConfig(temporal_downsample=1)))
