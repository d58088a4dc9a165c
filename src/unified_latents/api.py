"""The Python API: open a trained run and use its models from a notebook or script.

    import unified_latents as ul
    ae = ul.load("runs/autoencoder-fashion-mnist")       # -> ul.Autoencoder
    images = ae.test_images(8)                            # uint8 [8, C, H, W] from its dataset
    z = ae.encode(images)                                 # uint8 (or float in [-1, 1]) -> z_clean
    x = ae.decode(z, steps=32, seed=0)                    # -> uint8 [N, C, H, W]
    bpp = ae.bits_per_pixel(images)                       # the prior's bound, per image
    gen = ul.load("runs/base-fashion-mnist")              # -> ul.Generator
    samples = gen.sample(16, class_label=3, guidance=2.0, seed=0)   # or prompt="..."
    fast = ul.load("runs/base-fashion-mnist", decoder="runs/DISTILLED")  # a distilled decoder

`ul.load` reads the run kind from the run's saved config, rebuilds the EMA model from its newest
checkpoint and fails with one clear `RunError` for a missing, incomplete or unknown run. Outputs
equal what the CLI writes for the same seed (`ul reconstruct`, `ul sample`). `dtype=torch.bfloat16`
runs the networks under bf16 autocast (weights, sampler state and reductions stay fp32).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from unified_latents.conditions import ConditionSource
from unified_latents.data.datasets import heldout_images, load_split, to_model_range, to_uint8
from unified_latents.diffusion.elbo import nats_to_bits
from unified_latents.generation import sample_chunks, sampling_conditions
from unified_latents.objectives.autoencoder import Autoencoder as AutoencoderModule
from unified_latents.objectives.latent_diffusion import LatentDiffusion
from unified_latents.runs.autoencoder import AutoencoderRunConfig
from unified_latents.runs.directory import RunError
from unified_latents.runs.kind import with_decoder
from unified_latents.runs.registry import kind_of
from unified_latents.training.checkpoint import CheckpointError


class _Precision:
    """Device and compute dtype of a loaded model."""

    def __init__(self, device: str | torch.device, dtype: torch.dtype) -> None:
        if dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"dtype must be torch.float32 or torch.bfloat16, got {dtype}")
        self.device, self.dtype = torch.device(device), dtype

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype == torch.bfloat16:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def generator(self, seed: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(seed)


class Autoencoder:
    """A trained stage-1 model (UL or a baseline): encode, decode, reconstruct, measure bits."""

    def __init__(
        self, model: AutoencoderModule, config: AutoencoderRunConfig, precision: _Precision
    ) -> None:
        self.model, self.config, self._precision = model, config, precision

    @property
    def image_shape(self) -> tuple[int, ...]:
        """[C, H, W] of the images it encodes ([C, T, H, W] of the clips of a video run)."""
        return self.model.image_shape

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return self.model.latent_shape

    def test_images(self, num: int) -> Tensor:
        """The first `num` images (uint8 [num, C, H, W]) of the run's held-out split."""
        return heldout_images(load_split(self.config.data, "test"), num)[0]

    def _model_input(self, images: Tensor) -> Tensor:
        if tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(
                f"images must be [N, {', '.join(map(str, self.image_shape))}], "
                f"got {list(images.shape)}"
            )
        x = to_model_range(images) if images.dtype == torch.uint8 else images.float()
        return x.to(self._precision.device)

    @torch.no_grad()
    def encode(self, images: Tensor, batch_size: int = 256) -> Tensor:
        """z_clean (fp32 [N, c, h, w], on the model's device) of uint8 images or floats in
        [-1, 1]."""
        x = self._model_input(images)
        with self._precision.autocast():
            parts = [self.model.encode(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        return torch.cat(parts).float()

    @torch.no_grad()
    def decode(
        self, z: Tensor, *, steps: int | None = None, seed: int = 0, noisy: bool = False
    ) -> Tensor:
        """uint8 images [N, C, H, W] from latents z; `steps` decoder steps (default: the run's
        eval setting); `noisy` first adds the encoder noise (z_0, the decoder's training input)."""
        steps = self.config.eval.decoder_steps if steps is None else steps
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        generator = self._precision.generator(seed)
        z = z.to(self._precision.device).float()
        with self._precision.autocast():
            if noisy:
                z = self.model.add_encoder_noise(z, generator)
            x = self.model.decode(
                z, num_steps=steps, sampler=self.config.eval.sampler, generator=generator
            )
        return to_uint8(x.cpu())

    def reconstruct(self, images: Tensor, *, steps: int | None = None, seed: int = 0) -> Tensor:
        """Encode, add the encoder noise and decode: what `ul reconstruct` shows."""
        return self.decode(self.encode(images), steps=steps, seed=seed, noisy=True)

    @torch.no_grad()
    def bits_per_pixel(self, images: Tensor, *, seed: int = 0) -> Tensor:
        """Per image [N]: bits of its latent under the model's prior (UL: the bound L_z, one
        noise draw), divided by H·W (by T·H·W for clips)."""
        if not self.model.has_latent_prior:
            raise ValueError(f"{type(self.model).__name__} has no prior over its latents")
        z = self.encode(images)
        diffusion, terminal = self.model.rate(z, self._precision.generator(seed))
        bits = torch.as_tensor(nats_to_bits(diffusion + terminal)).cpu()
        return bits / math.prod(self.image_shape[1:])


class Generator:
    """A trained base model (or end-to-end run) with its autoencoder: class- or text-conditional
    image generation, base model → latent → decoder."""

    def __init__(
        self,
        base: LatentDiffusion,
        autoencoder: AutoencoderModule,
        config: Any,
        conditions: ConditionSource,
        precision: _Precision,
    ) -> None:
        self.base, self.autoencoder, self.config = base, autoencoder, config
        self.conditions, self._precision = conditions, precision

    @property
    def image_shape(self) -> tuple[int, ...]:
        return self.autoencoder.image_shape

    @property
    def class_names(self) -> list[str]:
        return list(self.conditions.class_names)

    @torch.no_grad()
    def sample(
        self,
        num: int,
        *,
        class_label: int | None = None,
        prompt: str | None = None,
        guidance: float | None = None,
        seed: int = 0,
        steps: int | None = None,
        decoder_steps: int | None = None,
        decoder_samples: int | None = None,
    ) -> Tensor:
        """uint8 images [num, C, H, W]; without class or prompt, every class in turn. The same
        images as `ul sample --num num --seed seed` with the same options. `decoder_samples`: K
        > 1 makes each image the mean of K decoder samples of its latent."""
        if num < 1:
            raise ValueError(f"num must be at least 1, got {num}")
        overrides: dict[str, Any] = {}
        for name, value in (
            ("guidance", guidance),
            ("base_steps", steps),
            ("decoder_steps", decoder_steps),
            ("decoder_samples", decoder_samples),
        ):
            if value is not None:
                overrides[name] = value
        settings = replace(self.config.eval, **overrides)
        cond, _ = sampling_conditions(self.conditions, num, class_label, prompt)
        with self._precision.autocast():
            chunks = sample_chunks(
                self.base, self.autoencoder, cond, self.conditions, settings, num=num, seed=seed
            )
        return torch.cat([to_uint8(chunks[k]) for k in sorted(chunks)])


def load(
    path: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    decoder: str | Path | None = None,
) -> Autoencoder | Generator:
    """Open a run directory: an `Autoencoder` for autoencoder (and decoder-distillation) runs, a
    `Generator` for the kinds that generate (base-model, pixel-model and end-to-end runs;
    `runs/registry.py`). `decoder`: for a generator, a run whose decoder replaces its
    autoencoder's, e.g. a decoder-distillation run of the same autoencoder (`ul sample
    --decoder`)."""
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir} does not exist (or is not a directory)")
    precision = _Precision(device, dtype)
    try:
        kind = kind_of(run_dir)
    except (KeyError, ValueError) as error:  # json.JSONDecodeError is a ValueError
        raise RunError(f"{run_dir}/config.json is unreadable ({error!r})") from None
    try:
        if kind.opens_as == "autoencoder":
            if decoder is not None:
                raise RunError(
                    f"decoder= is for runs that generate; {run_dir} is a {kind.name} run"
                )
            model, config, _ = kind.autoencoder(run_dir, precision.device)
            return Autoencoder(model, config, precision)
        models = kind.generator(run_dir, precision.device)
        if decoder is not None:
            source = Path(decoder)
            replacement = kind_of(source).autoencoder(source, precision.device)
            models = with_decoder(models, replacement, source)
        base, autoencoder, config, conditions = models
        return Generator(base, autoencoder, config, conditions, precision)
    except CheckpointError as error:
        raise RunError(f"{run_dir} has no usable checkpoint yet ({error})") from None
