"""The frame-prediction base model on video latents (objectives/latent_diffusion.py, issue 17):
the context enters as channels, the loss covers only the generated frames, guidance's null
context is all zeros, and samples keep the given frames exactly."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from unified_latents.config import ConfigError
from unified_latents.evaluation.elbo import scored_pixels
from unified_latents.networks.conditioning import ConditionConfig
from unified_latents.networks.vit import ViTConfig
from unified_latents.objectives.latent_diffusion import BaseModelConfig, LatentDiffusion

SHAPE = (2, 4, 4, 4)  # c, T', h, w


def _model(context_frames: int = 1, dropout: float = 0.0) -> LatentDiffusion:
    torch.manual_seed(0)
    config = BaseModelConfig(
        network=ViTConfig(width=16, depth=2, heads=2),
        condition=ConditionConfig(kind="none"),
        context_frames=context_frames,
        context_dropout=dropout,
    )
    return LatentDiffusion(config, SHAPE, logsnr_max=5.0)


def test_the_context_is_the_first_frames_and_a_mask() -> None:
    model = _model(context_frames=2)
    z = torch.randn(3, *SHAPE)
    context = model.frame_context(z)
    assert context.shape == (3, 3, 4, 4, 4)
    assert torch.equal(context[:, :2, :2], z[:, :, :2]) and (context[:, :2, 2:] == 0).all()
    assert (context[:, 2, :2] == 1).all() and (context[:, 2, 2:] == 0).all()
    noise = torch.randn_like(z)
    assert torch.equal(model.paste_context(noise, context)[:, :, :2], z[:, :, :2])
    assert torch.equal(model.paste_context(noise, context)[:, :, 2:], noise[:, :, 2:])


def test_the_loss_does_not_score_the_context_frames() -> None:
    """Changing the network's output on context frames changes nothing in the loss."""
    model = _model(context_frames=2)
    z = torch.randn(3, *SHAPE)
    base = model(z, None, torch.Generator().manual_seed(0), drop_labels=False)
    original = model.denoiser.network.forward

    def shifted(z_t: torch.Tensor, logsnr: torch.Tensor, context: torch.Tensor | None = None):
        out = original(z_t, logsnr, context).clone()
        out[:, :, :2] += 3.0
        return out

    model.denoiser.network.forward = shifted  # type: ignore[method-assign]
    after = model(z, None, torch.Generator().manual_seed(0), drop_labels=False)
    torch.testing.assert_close(after.loss, base.loss)
    torch.testing.assert_close(after.elbo_nats, base.elbo_nats)


def test_context_dropout_gives_the_null_context() -> None:
    """With dropout → 1 every example trains on the all-zero context, the null of guidance."""
    model = _model(context_frames=1, dropout=0.999)
    z = torch.randn(2, *SHAPE)
    seen: list[torch.Tensor] = []
    original = model.denoiser.network.forward

    def spy(z_t: torch.Tensor, logsnr: torch.Tensor, context: torch.Tensor | None = None):
        seen.append(context if context is not None else torch.zeros(1))
        return original(z_t, logsnr, context)

    model.denoiser.network.forward = spy  # type: ignore[method-assign]
    model(z, None, torch.Generator().manual_seed(0))
    assert (seen[0] == 0).all()


def test_context_needs_video_latents_and_no_other_condition() -> None:
    with pytest.raises(ConfigError, match="context_frames"):
        LatentDiffusion(BaseModelConfig(context_frames=1), (2, 4, 4), logsnr_max=5.0)
    with pytest.raises(ConfigError, match="context_frames"):
        _model(context_frames=4)
    with pytest.raises(ValueError, match="context_frames"):
        BaseModelConfig(context_frames=-1)


def test_bits_per_pixel_of_frame_prediction_count_only_the_generated_frames() -> None:
    """The base ELBO covers the 3 generated latent frames of 4; the prior's bound all of them."""
    model = _model(context_frames=1)
    clips = SimpleNamespace(image_shape=(1, 8, 16, 16))  # 8 frames: 2 per latent frame
    assert scored_pixels(model, clips) == {"base_elbo": 6 * 256, "prior_bound": 8 * 256}  # type: ignore[arg-type]
    images = _model(context_frames=0)
    assert scored_pixels(images, clips)["base_elbo"] == 8 * 256  # type: ignore[arg-type]
