"""PSNR and SSIM against closed forms and a brute-force per-window SSIM."""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers import random_signed
from unified_latents.metrics.image_quality import (
    SSIM_K1,
    SSIM_K2,
    SSIM_WINDOW_SIGMA,
    psnr,
    ssim,
    ssim_window_size,
)


def test_psnr_of_constant_offset_is_closed_form() -> None:
    x = random_signed((3, 1, 8, 8))
    offsets = torch.tensor([0.1, 0.02, 0.5], dtype=torch.float64)
    y = x + offsets.view(-1, 1, 1, 1)
    # MSE = δ², so PSNR = 10·log10(L² / δ²) with L = 2.
    expected = 10 * torch.log10(4.0 / offsets**2)
    torch.testing.assert_close(psnr(x, y), expected)


def test_psnr_of_identical_images_is_infinite() -> None:
    x = random_signed((2, 3, 8, 8))
    assert torch.isinf(psnr(x, x)).all()


def test_ssim_of_identical_images_is_one() -> None:
    for shape in [(2, 1, 8, 8), (2, 3, 32, 32), (1, 3, 5, 9)]:
        x = random_signed(shape)
        torch.testing.assert_close(ssim(x, x), torch.ones(shape[0], dtype=torch.float64))


def test_ssim_is_symmetric() -> None:
    x, y = random_signed((4, 3, 16, 16), seed=1), random_signed((4, 3, 16, 16), seed=2)
    torch.testing.assert_close(ssim(x, y), ssim(y, x))


def test_ssim_of_constant_images_is_the_luminance_term() -> None:
    # Constant images have zero variance and covariance, so the contrast-structure factor is
    # C2 / C2 = 1 and SSIM = (2·c1·c2 + C1) / (c1² + c2² + C1).
    c1, c2 = 0.3, -0.5
    x = torch.full((1, 3, 8, 8), c1, dtype=torch.float64)
    y = 1.5 * x - 0.95  # a·x + b with a = 1.5, b = −0.95 → c2
    torch.testing.assert_close(y, torch.full_like(x, c2))
    big_c1 = (SSIM_K1 * 2.0) ** 2
    expected = (2 * c1 * c2 + big_c1) / (c1**2 + c2**2 + big_c1)
    torch.testing.assert_close(ssim(x, y), torch.tensor([expected], dtype=torch.float64))


def _brute_force_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float) -> float:
    """Mean SSIM of one image pair [C, H, W] by explicit loops over windows and channels."""
    size = ssim_window_size(x.shape[-2], x.shape[-1])
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    gauss = torch.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * SSIM_WINDOW_SIGMA**2))
    weights = gauss / gauss.sum()
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    values = []
    for channel in range(x.shape[0]):
        for top in range(x.shape[1] - size + 1):
            for left in range(x.shape[2] - size + 1):
                patch_x = x[channel, top : top + size, left : left + size]
                patch_y = y[channel, top : top + size, left : left + size]
                mu_x, mu_y = (weights * patch_x).sum(), (weights * patch_y).sum()
                var_x = (weights * (patch_x - mu_x) ** 2).sum()
                var_y = (weights * (patch_y - mu_y) ** 2).sum()
                cov = (weights * (patch_x - mu_x) * (patch_y - mu_y)).sum()
                numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
                denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
                values.append(float(numerator / denominator))
    return sum(values) / len(values)


@pytest.mark.parametrize("shape", [(2, 1, 8, 8), (1, 3, 13, 12)])
def test_ssim_matches_brute_force_windows(shape: tuple[int, ...]) -> None:
    x = random_signed(shape, seed=3)
    y = 0.7 * x + 0.2 * random_signed(shape, seed=4) + 0.1  # correlated but different
    expected = torch.tensor([_brute_force_ssim(x[i], y[i], 2.0) for i in range(shape[0])])
    torch.testing.assert_close(ssim(x, y), expected.double())


def test_window_shrinks_to_an_odd_size_for_small_images() -> None:
    assert ssim_window_size(32, 32) == 11
    assert ssim_window_size(8, 8) == 7  # 8×8 digits: 7×7 window, 2×2 valid positions
    assert ssim_window_size(9, 20) == 9


def test_metrics_are_invariant_to_scaling_images_and_data_range_together() -> None:
    # C1, C2 and the peak scale with L, so (x, y, L) and (s·x, s·y, s·L) agree. (SSIM is not
    # shift-invariant: its luminance term depends on the means, so only scaling is tested.)
    x, y = random_signed((2, 3, 12, 12), seed=5), random_signed((2, 3, 12, 12), seed=6)
    torch.testing.assert_close(ssim(x, y), ssim(x / 2, y / 2, data_range=1.0))
    torch.testing.assert_close(psnr(x, y), psnr((x + 1) / 2, (y + 1) / 2, data_range=1.0))


def test_float32_inputs_are_close_to_float64() -> None:
    x, y = random_signed((2, 1, 8, 8), seed=7), random_signed((2, 1, 8, 8), seed=8)
    assert ssim(x.float(), y.float()).dtype == torch.float32
    torch.testing.assert_close(ssim(x.float(), y.float()).double(), ssim(x, y), atol=1e-5, rtol=0)
    assert math.isclose(float(psnr(x.float(), y.float())[0]), float(psnr(x, y)[0]), rel_tol=1e-5)
