"""Full-reference image quality per image: PSNR and SSIM (Wang et al. 2004).

Inputs are float images [B, C, H, W] in the model range [-1, 1] by default, so the data range
(max − min of the representable values) is 2. Pass `data_range=1.0` for [0, 1] or 255 for uint8.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# Wang, Bovik, Sheikh & Simoncelli (2004), "Image quality assessment: from error visibility to
# structural similarity", §III-C: an 11×11 circular-symmetric Gaussian window with σ = 1.5 and
# stabilising constants C1 = (K1·L)², C2 = (K2·L)² with K1 = 0.01, K2 = 0.03.
SSIM_WINDOW_SIZE = 11
SSIM_WINDOW_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _check_pair(x: Tensor, y: Tensor) -> None:
    if x.shape != y.shape or x.dim() not in (4, 5):
        raise ValueError(
            "expected two [B, C, H, W] images (or [B, C, T, H, W] clips) of one shape, got "
            f"{x.shape}, {y.shape}"
        )


def _working_dtype(x: Tensor) -> torch.dtype:
    # Half precision loses the small variances SSIM subtracts; float64 inputs stay float64.
    return torch.promote_types(x.dtype, torch.float32)


def psnr(x: Tensor, y: Tensor, data_range: float = 2.0) -> Tensor:
    """Peak signal-to-noise ratio in dB per image [B]: 10·log10(L² / MSE), MSE over C, H, W
    (and T: one PSNR per clip).

    Identical images give +inf.
    """
    _check_pair(x, y)
    dtype = _working_dtype(x)
    squared_error = (x.to(dtype) - y.to(dtype)) ** 2
    mse = squared_error.flatten(1).mean(dim=1)  # [B]
    return 10.0 * torch.log10(data_range**2 / mse)


def ssim_window_size(height: int, width: int) -> int:
    """The window side: 11, or the largest odd size that fits a smaller image.

    Odd keeps the window centred on a pixel; σ stays 1.5 so the window only loses its tails
    (e.g. 8×8 digits use a 7×7 window and get 2×2 valid positions).
    """
    size = min(SSIM_WINDOW_SIZE, height, width)
    return size if size % 2 == 1 else size - 1


def gaussian_window_1d(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Normalised 1-D Gaussian taps [size]; the 2-D window is its outer product (separable)."""
    offsets = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    taps = torch.exp(-(offsets**2) / (2 * sigma**2))
    return taps / taps.sum()


def _local_mean(images: Tensor, taps: Tensor) -> Tensor:
    """Gaussian-weighted mean over each valid window position, per channel: [B, C, H', W']."""
    channels, size = images.shape[1], taps.numel()
    rows = taps.view(1, 1, size, 1).expand(channels, 1, size, 1)
    cols = taps.view(1, 1, 1, size).expand(channels, 1, 1, size)
    # Two depthwise 1-D passes equal one 2-D pass with the outer-product window.
    return F.conv2d(F.conv2d(images, rows, groups=channels), cols, groups=channels)


def ssim_map(x: Tensor, y: Tensor, data_range: float = 2.0) -> Tensor:
    """SSIM at every valid window position [B, C, H', W'] (Wang et al. 2004, eq. 13)."""
    _check_pair(x, y)
    dtype = _working_dtype(x)
    x, y = x.to(dtype), y.to(dtype)
    size = ssim_window_size(x.shape[-2], x.shape[-1])
    if size < 1:
        raise ValueError(f"image too small for SSIM: {tuple(x.shape)}")
    taps = gaussian_window_1d(size, SSIM_WINDOW_SIGMA, dtype, x.device)

    mu_x, mu_y = _local_mean(x, taps), _local_mean(y, taps)
    var_x = _local_mean(x * x, taps) - mu_x**2
    var_y = _local_mean(y * y, taps) - mu_y**2
    cov_xy = _local_mean(x * y, taps) - mu_x * mu_y

    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    contrast_structure = (2 * cov_xy + c2) / (var_x + var_y + c2)
    return luminance * contrast_structure


def ssim(x: Tensor, y: Tensor, data_range: float = 2.0) -> Tensor:
    """Mean SSIM per image [B], averaged over channels and valid window positions (and over
    frames, for clips [B, C, T, H, W])."""
    if x.dim() == 5:
        _check_pair(x, y)
        x_frames, y_frames = (v.transpose(1, 2).flatten(0, 1) for v in (x, y))  # [B·T, C, H, W]
        return ssim(x_frames, y_frames, data_range).reshape(x.shape[0], -1).mean(dim=1)
    return ssim_map(x, y, data_range).flatten(1).mean(dim=1)


def psnr_from_mse(mse: float, data_range: float = 2.0) -> float:
    """PSNR in dB of a given mean squared error (for aggregating MSE over a data set first)."""
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)
