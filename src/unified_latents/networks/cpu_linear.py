"""`Linear`: nn.Linear whose fp32 products on a CPU can run in oneDNN instead of BLAS.

PyTorch's CPU fp32 matmul calls MKL's sgemm, and MKL runs its AVX-512 kernels on Intel CPUs only:
on an AMD CPU with AVX-512 (Zen 4/5) it takes an AVX2 path at about half the core's fp32 peak.
oneDNN's JIT convolutions use AVX-512 on any CPU, and a linear map is a 1×1 convolution. Measured
on an AMD EPYC (Zen 5), one thread, forward + backward of transformer-shaped linears: 89–99
GFLOP/s through F.linear, 154–188 through the convolution (docs/results.md §4).

The rows of the input [M, C] (contiguous) are viewed, without a copy, as a channels-last image
[16, C, M/16, 1]: PyTorch sends a single-threaded fp32 1×1 convolution to oneDNN only when the
batch is ≥ 16. The result is the same product with another summation order (≈1e-7 relative).

Which backend: `UL_CPU_MATMUL` = `auto` (default: oneDNN on non-Intel CPUs with AVX-512, BLAS
elsewhere), `onednn` or `blas`, read once per process (CPU vendor and flags come from
training/precision.py, which reads /proc/cpuinfo for bf16 too); `set_cpu_matmul` overrides it.
Only CPU fp32 outside autocast takes the oneDNN path (bf16 products already run in oneDNN);
under torch.compile it is an opaque operator (`onednn_linear_op`, with the convolution's
backward) that inductor calls as it is; CUDA is untouched.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unified_latents.training.precision import system_cpu_flags, system_cpu_vendor

CpuMatmul = Literal["onednn", "blas"]
ROW_BLOCKS = 16  # the conv batch: PyTorch's oneDNN threshold for one-thread 1×1 convolutions
ENV_VAR = "UL_CPU_MATMUL"
_override: CpuMatmul | None = None


def auto_backend(
    vendor: str | None, flags: frozenset[str] | None, onednn_available: bool
) -> CpuMatmul:
    """oneDNN where MKL would leave AVX-512 unused (a non-Intel CPU that has it), else BLAS."""
    has_avx512 = flags is not None and "avx512f" in flags
    if onednn_available and vendor and vendor != "GenuineIntel" and has_avx512:
        return "onednn"
    return "blas"


@functools.cache
def _configured() -> CpuMatmul:
    """`UL_CPU_MATMUL`, or the detected backend for `auto`; read once per process (a wrong
    value raises on every call, as errors are not cached)."""
    asked = os.environ.get(ENV_VAR, "auto").strip().lower()
    if asked in ("onednn", "blas"):
        return asked  # type: ignore[return-value]
    if asked != "auto":
        raise ValueError(f"{ENV_VAR} must be auto, onednn or blas, got {asked!r}")
    available = torch.backends.mkldnn.is_available()
    return auto_backend(system_cpu_vendor(), system_cpu_flags(), available)


def cpu_matmul() -> CpuMatmul:
    """The backend CPU fp32 `Linear` layers use now (see the module docstring)."""
    return _override if _override is not None else _configured()


def set_cpu_matmul(backend: CpuMatmul | None) -> None:
    """Force a backend in this process (None: back to `UL_CPU_MATMUL` / detection)."""
    global _override
    if backend not in (None, "onednn", "blas"):
        raise ValueError(f"cpu matmul backend must be onednn, blas or None, got {backend!r}")
    _override = backend


def _rows_image(x: Tensor) -> Tensor:
    """x [..., C] (rows divisible by 16) as a channels-last image [16, C, rows/16, 1], a view."""
    channels = x.shape[-1]
    rows = x.numel() // channels
    return x.reshape(ROW_BLOCKS, rows // ROW_BLOCKS, 1, channels).permute(0, 3, 1, 2)


def _image_rows(image: Tensor, leading: tuple[int, ...]) -> Tensor:
    """The inverse of `_rows_image` for an output image [16, O, rows/16, 1]."""
    return image.permute(0, 2, 3, 1).reshape(*leading, image.shape[1])


def onednn_linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """F.linear(x, weight, bias) as a oneDNN 1×1 convolution; rows of x divisible by 16."""
    out = F.conv2d(_rows_image(x), weight.reshape(*weight.shape, 1, 1), bias)  # channels-last
    return _image_rows(out, tuple(x.shape[:-1]))


# The same product as an opaque operator, so that torch.compile calls it as it is (inductor's
# convolution lowering failed on the row split under dynamic shapes); its backward is the
# convolution's, also opaque.
@torch.library.custom_op("unified_latents::onednn_linear", mutates_args=())
def onednn_linear_op(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    return onednn_linear(x.contiguous(), weight, bias)


@onednn_linear_op.register_fake
def _(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


@torch.library.custom_op("unified_latents::onednn_linear_backward", mutates_args=())
def onednn_linear_backward(
    grad: Tensor, x: Tensor, weight: Tensor, with_bias: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients (input, weight, bias; bias empty without one) of `onednn_linear_op`."""
    grad_image, image = _rows_image(grad.contiguous()), _rows_image(x.contiguous())
    kernel = weight.reshape(*weight.shape, 1, 1)
    grad_image_x, grad_kernel, grad_bias = torch.ops.aten.convolution_backward(
        grad_image, image, kernel, [weight.shape[0]] if with_bias else None,
        [1, 1], [0, 0], [1, 1], False, [0, 0], 1, [True, True, with_bias],
    )  # fmt: skip
    grad_x = _image_rows(grad_image_x, tuple(x.shape[:-1]))
    bias_grad = grad_bias if with_bias else weight.new_empty(0)
    return grad_x, grad_kernel.reshape(weight.shape), bias_grad


@onednn_linear_backward.register_fake
def _(grad: Tensor, x: Tensor, weight: Tensor, with_bias: bool) -> tuple[Tensor, Tensor, Tensor]:
    bias_shape = (weight.shape[0] if with_bias else 0,)
    return torch.empty_like(x), torch.empty_like(weight), weight.new_empty(bias_shape)


def _setup_context(ctx: Any, inputs: tuple[Tensor, Tensor, Tensor | None], output: Tensor) -> None:
    x, weight, bias = inputs
    ctx.save_for_backward(x, weight)
    ctx.with_bias = bias is not None


def _backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
    x, weight = ctx.saved_tensors
    grad_x, grad_weight, grad_bias = onednn_linear_backward(grad, x, weight, ctx.with_bias)
    return grad_x, grad_weight, grad_bias if ctx.with_bias else None


onednn_linear_op.register_autograd(_backward, setup_context=_setup_context)


def _takes_onednn_path(x: Tensor, weight: Tensor) -> bool:
    rows = x.numel() // max(x.shape[-1], 1) if x.dim() else 0
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and rows >= ROW_BLOCKS
        and rows % ROW_BLOCKS == 0
        and not torch.is_autocast_enabled("cpu")
        and bool(torch.backends.mkldnn.enabled)
        and cpu_matmul() == "onednn"
    )


class Linear(nn.Linear):
    """nn.Linear (same parameters and state dict) that takes the oneDNN path where it is faster."""

    def forward(self, x: Tensor) -> Tensor:
        if _takes_onednn_path(x, self.weight):
            if torch.compiler.is_compiling():
                return onednn_linear_op(x, self.weight, self.bias)
            return onednn_linear(x, self.weight, self.bias)
        return F.linear(x, self.weight, self.bias)
