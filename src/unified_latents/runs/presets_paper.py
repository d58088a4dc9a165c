"""Paper-scale presets: ImageNet-512 with the paper's architectures (UL-SPEC §11).

`ul train-autoencoder --preset imagenet-512 --set data.root=/data/imagenet` and
`ul train-base --autoencoder RUN --preset imagenet-512` (class-conditional; `imagenet-512-text`
for text). docs/paper_scale.md lists their parameter counts and FLOPs; `--dry-run` prints them.

What the paper states [P]: a 32×32×32 latent of a 512² image (16× downsampling, 32 channels);
encoder 2×2 patching + ResNet [128, 256, 512, 512] with 2 blocks per stage, 3 in the last; prior
ViT 8 blocks × 1024; decoder UViT with 2×2 patching, conv stages [128, 256, 512], 8 transformer
blocks × 1024, dropout 0.1; base model 2-level ViT [512, 1024] × [6, 16], dropout 0.1, latents
not patched; loss factor 1.5.

Our choices [C] (the paper is silent; all are `--set` overridable):
- heads of width 64 (16 at width 1024, 8 at 512); MLP ×4 with exact GELU;
- the decoder's transformer runs on the 32×32 grid (uvit.transformer_downsample: one more
  halving after the last conv stage, as in simple diffusion's UViT), where z_0 is added to its
  tokens and also concatenated, upsampled, to x_t at the input (latent_injection=both);
- decoder weighting bias 0 (the spec default: 512² is the resolution the λ ranges are set for);
- AdamW β = (0.9, 0.99), lr 1e-4 after 10k warm-up steps, grad clip 1.0, EMA 0.9999;
- global batch 256 for stage 1 and 1024 for the base model ("bigger model and batch than stage
  1", spec §8); `train.grad_accumulation` keeps the global batch on fewer GPUs;
- bf16 via train.precision=auto (bf16 on Ampere-or-newer GPUs, fp32 on CPUs without native
  bf16); train.activation_checkpointing off (turn it on when the batch does not fit);
- images: the largest centred square resized to 512 (data.crop=random-resized for random
  squares), decoded by 8 DataLoader worker processes per rank;
- base model: class-conditional, 1000 classes, 10% label dropout, latents normalised by their
  scalar mean/std, guidance 2.0 for the samples drawn during training.
"""

from __future__ import annotations

from dataclasses import replace

from unified_latents.data.datasets import DataConfig
from unified_latents.networks.conditioning import ConditionConfig
from unified_latents.networks.encoder import EncoderConfig
from unified_latents.networks.uvit import UViTConfig
from unified_latents.networks.vit import ViTConfig
from unified_latents.objectives.latent_diffusion import BaseModelConfig
from unified_latents.objectives.unified_latents import UnifiedLatentsConfig
from unified_latents.runs.autoencoder import AutoencoderEvalConfig, AutoencoderRunConfig
from unified_latents.runs.base_model import BaseEvalConfig, BaseRunConfig
from unified_latents.training.config import TrainConfig
from unified_latents.training.optim import OptimConfig

IMAGENET_512 = DataConfig(
    name="folder", image_size=512, channels=3, holdout_size=10_000, num_workers=8, crop="center"
)


def paper_encoder() -> EncoderConfig:
    return EncoderConfig(
        channels=(128, 256, 512, 512),
        blocks_per_stage=2,
        last_stage_blocks=3,
        latent_channels=32,
        patch_size=2,
    )


def paper_prior() -> ViTConfig:
    return ViTConfig(width=1024, depth=8, heads=16, mlp_activation="gelu")


def paper_decoder() -> UViTConfig:
    return UViTConfig(
        channels=(128, 256, 512),
        blocks_per_stage=2,
        transformer_width=1024,
        transformer_depth=8,
        heads=16,
        mlp_activation="gelu",
        patch_size=2,
        dropout=0.1,
        transformer_downsample=True,
    )


def paper_base_network() -> ViTConfig:
    return ViTConfig(
        width=512,
        depth=6,
        heads=8,
        mlp_activation="gelu",
        dropout=0.1,
        inner_widths=(1024,),
        inner_depths=(16,),
    )


def paper_optim() -> OptimConfig:
    return OptimConfig(lr=1e-4, betas=(0.9, 0.99), warmup_steps=10_000, grad_clip=1.0)


def paper_training(batch_size: int, max_steps: int) -> TrainConfig:
    """bf16 where the device has it ("auto"), EMA 0.9999, a checkpoint every 5k steps or 30 min."""
    return TrainConfig(
        batch_size=batch_size,
        max_steps=max_steps,
        log_every=100,
        eval_every=10_000,
        checkpoint_every=5_000,
        checkpoint_minutes=30.0,
        precision="auto",
        ema_decay=0.9999,
    )


def autoencoder_imagenet_512() -> AutoencoderRunConfig:
    """Stage 1 at paper scale on an ImageNet-style folder at 512² (module docstring: what is the
    paper's and what is ours). Needs `--set data.root=DIR` (class subfolders; DIR/train and
    DIR/val (or DIR/test) if both exist, else a hashed 10k-image holdout)."""
    return AutoencoderRunConfig(
        data=IMAGENET_512,
        model=UnifiedLatentsConfig(
            encoder=paper_encoder(),
            prior=paper_prior(),
            decoder=paper_decoder(),
            loss_factor=1.5,
            decoder_bias=0.0,
        ),
        optim=paper_optim(),
        train=paper_training(batch_size=256, max_steps=300_000),
        eval=AutoencoderEvalConfig(
            num_images=512, rate_passes=2, num_reconstructions=16, decoder_steps=64, batch_size=32
        ),
    )


def base_imagenet_512() -> BaseRunConfig:
    """Stage 2 at paper scale: the 2-level ViT on the frozen 32×32×32 latents, class-conditional
    (1000 classes) with 10% label dropout for guidance (module docstring for our choices)."""
    return BaseRunConfig(
        model=BaseModelConfig(
            network=paper_base_network(),
            condition=ConditionConfig(kind="class", num_classes=1000),
            latent_normalization="scalar",
        ),
        optim=paper_optim(),
        train=paper_training(batch_size=1024, max_steps=400_000),
        eval=BaseEvalConfig(
            num_latents=1000,
            elbo_passes=1,
            samples_per_class=1,
            base_steps=128,
            decoder_steps=64,
            guidance=2.0,
            batch_size=32,
        ),
    )


def base_imagenet_512_text() -> BaseRunConfig:
    """Text-conditional: sentence embeddings (MiniLM) of captions built from the class folder
    names, as for fashion-mnist-text. Only meaningful when the folders have readable names
    ("goldfish", not "n01443537"): rename or symlink them first."""
    config = base_imagenet_512()
    return replace(config, model=replace(config.model, condition=ConditionConfig(kind="text")))
