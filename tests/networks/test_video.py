"""Video networks (networks/video.py): folding frames, the shared UL objective on clips, the
one-frame equivalence with the image networks, and factorised attention mixing frames."""

from __future__ import annotations

import pytest
import torch

from unified_latents.config import ConfigError
from unified_latents.networks.encoder import EncoderConfig
from unified_latents.networks.uvit import UViTConfig
from unified_latents.networks.video import VideoConfig, fold_frames, unfold_frames
from unified_latents.networks.vit import LatentViT, ViTConfig
from unified_latents.objectives.unified_latents import UnifiedLatents, UnifiedLatentsConfig


def _config(attention: str = "factorised", temporal_downsample: int = 1) -> UnifiedLatentsConfig:
    return UnifiedLatentsConfig(
        encoder=EncoderConfig(channels=(8, 16), blocks_per_stage=1, latent_channels=2),
        prior=ViTConfig(width=16, depth=2, heads=2),
        decoder=UViTConfig(
            channels=(8, 16), blocks_per_stage=1, transformer_width=16, transformer_depth=2, heads=2
        ),
        video=VideoConfig(temporal_downsample=temporal_downsample, attention=attention),  # type: ignore[arg-type]
    )


def test_fold_then_unfold_is_the_identity() -> None:
    x = torch.randn(2, 3, 5, 4, 4)
    folded = fold_frames(x)
    assert folded.shape == (10, 3, 4, 4)
    assert torch.equal(folded[6], x[1, :, 1])  # clip 1, frame 1
    assert torch.equal(unfold_frames(folded, 5), x)


@pytest.mark.parametrize(("attention", "downsample"), [("factorised", 1), ("full", 2)])
def test_clips_go_through_encoder_prior_and_decoder(attention: str, downsample: int) -> None:
    torch.manual_seed(0)
    model = UnifiedLatents(_config(attention, downsample), 1, 8, num_frames=4)
    assert model.image_shape == (1, 4, 8, 8)
    assert model.latent_shape == (2, 4 // downsample, 4, 4)
    x = torch.rand(3, 1, 4, 8, 8) * 2 - 1
    terms = model(x, torch.Generator().manual_seed(0))
    assert terms.loss.shape == (3,) and torch.isfinite(terms.loss).all()
    terms.loss.mean().backward()
    assert all(p.grad is not None for p in model.encoder.parameters())
    z = model.encode(x)
    assert z.shape == (3, *model.latent_shape)
    assert model.decode(z, num_steps=2).shape == x.shape


def test_a_one_frame_clip_gives_the_image_loss_with_the_same_weights() -> None:
    """The objective is shared: with full attention and the (zero-initialised) frame embedding,
    a video model holding an image model's weights computes the image model's loss on T = 1."""
    torch.manual_seed(0)
    image = UnifiedLatents(_config("full"), 1, 8)
    video = UnifiedLatents(_config("full"), 1, 8, num_frames=1)
    weights = {
        key.replace("encoder.", "encoder.frames_encoder.", 1)
        if key.startswith("encoder.")
        else key: value
        for key, value in image.state_dict().items()
    }
    missing, unexpected = video.load_state_dict(weights, strict=False)
    assert not unexpected and all("time_position" in key for key in missing)
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    image_terms = image(x, torch.Generator().manual_seed(1))
    video_terms = video(x[:, :, None], torch.Generator().manual_seed(1))
    torch.testing.assert_close(video_terms.loss, image_terms.loss)
    torch.testing.assert_close(video_terms.rate_nats, image_terms.rate_nats)


@pytest.mark.parametrize("attention", ["factorised", "full"])
def test_attention_mixes_frames(attention: str) -> None:
    torch.manual_seed(0)
    network = LatentViT(ViTConfig(width=16, depth=2, heads=2), 2, 4, frames=3, attention=attention)
    for parameter in network.parameters():  # undo the zero-initialised output and gates
        torch.nn.init.normal_(parameter, std=0.2)
    z = torch.randn(1, 2, 3, 4, 4)
    changed = z.clone()
    changed[:, :, 0] += 1.0
    logsnr = torch.zeros(1)
    before, after = network(z, logsnr), network(changed, logsnr)
    assert before.shape == z.shape
    assert not torch.allclose(before[:, :, 2], after[:, :, 2])  # frame 2 sees frame 0


def test_video_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="temporal_downsample"):
        VideoConfig(temporal_downsample=0)
    with pytest.raises(ValueError, match="attention"):
        VideoConfig(attention="diagonal")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="do not divide"):
        UnifiedLatents(_config(temporal_downsample=2), 1, 8, num_frames=3)
    with pytest.raises(ConfigError, match="one level"):
        LatentViT(
            ViTConfig(width=16, depth=2, inner_widths=(16,), inner_depths=(1,)), 2, 4, frames=2
        )
