"""networks/cpu_linear.py: the oneDNN path computes F.linear, and is taken only where it should."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unified_latents.networks import cpu_linear
from unified_latents.networks.cpu_linear import (
    Linear,
    auto_backend,
    cpu_matmul,
    onednn_linear,
    onednn_linear_op,
    set_cpu_matmul,
)
from unified_latents.training.precision import cpu_vendor


@pytest.fixture(autouse=True)
def _reset_backend() -> Iterator[None]:
    yield
    set_cpu_matmul(None)
    cpu_linear._configured.cache_clear()  # the environment is read once per process


@pytest.mark.parametrize("shape", [(32, 24), (4, 16, 24), (2, 8, 4, 24)])
@pytest.mark.parametrize("bias", [True, False])
def test_onednn_linear_is_f_linear_with_gradients(shape: tuple[int, ...], bias: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=generator, requires_grad=True)
    weight = torch.randn(40, 24, generator=generator, requires_grad=True)
    b = torch.randn(40, generator=generator, requires_grad=True) if bias else None
    grad = torch.randn(*shape[:-1], 40, generator=generator)
    results = []
    for fn in (F.linear, onednn_linear):
        out = fn(x, weight, b)
        params = [x, weight] + ([b] if b is not None else [])
        results.append((out, torch.autograd.grad(out, params, grad)))
    (want, want_grads), (got, got_grads) = results
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-4)


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[Tensor]:
    calls: list[Tensor] = []
    original = cpu_linear.onednn_linear

    def spy(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        calls.append(x)
        return original(x, weight, bias)

    monkeypatch.setattr(cpu_linear, "onednn_linear", spy)
    return calls


def test_linear_takes_the_onednn_path_only_where_it_applies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _spy(monkeypatch)
    layer = Linear(8, 4)
    set_cpu_matmul("onednn")
    layer(torch.randn(32, 8))
    assert len(calls) == 1
    layer(torch.randn(30, 8))  # rows not divisible by 16: F.linear
    layer(torch.randn(8, 8))  # 8 rows: too few
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 products are oneDNN already
        assert layer(torch.randn(32, 8)).dtype == torch.bfloat16
    assert len(calls) == 1
    set_cpu_matmul("blas")
    layer(torch.randn(32, 8))
    assert len(calls) == 1


def test_linear_keeps_nn_linear_parameters() -> None:
    layer, reference = Linear(8, 4), nn.Linear(8, 4)
    assert layer.state_dict().keys() == reference.state_dict().keys()
    layer.load_state_dict(reference.state_dict())
    set_cpu_matmul("onednn")
    x = torch.randn(3, 16, 8)
    torch.testing.assert_close(layer(x), reference(x), rtol=1e-5, atol=1e-6)


def test_auto_backend_follows_the_cpu() -> None:
    avx512 = frozenset({"avx2", "avx512f"})
    assert auto_backend("AuthenticAMD", avx512, True) == "onednn"
    assert auto_backend("GenuineIntel", avx512, True) == "blas"
    assert auto_backend("AuthenticAMD", frozenset({"avx2"}), True) == "blas"
    assert auto_backend("AuthenticAMD", avx512, False) == "blas"
    assert auto_backend(None, avx512, True) == "blas"  # /proc/cpuinfo unreadable
    assert auto_backend("AuthenticAMD", None, True) == "blas"


def test_cpu_vendor_reads_the_first_processor(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2 avx512f\n\n"
        "processor\t: 1\nvendor_id\t: Other\nflags\t\t: fpu\n"
    )
    assert cpu_vendor(cpuinfo) == "AuthenticAMD"
    assert cpu_vendor(tmp_path / "missing") is None


def test_environment_variable_chooses_and_a_wrong_value_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cpu_linear._configured.cache_clear()
    monkeypatch.setenv("UL_CPU_MATMUL", "blas")
    assert cpu_matmul() == "blas"
    monkeypatch.setenv("UL_CPU_MATMUL", "ONEDNN")
    assert cpu_matmul() == "blas"  # read once per process
    cpu_linear._configured.cache_clear()
    assert cpu_matmul() == "onednn"
    set_cpu_matmul("blas")
    assert cpu_matmul() == "blas"  # the process override wins
    set_cpu_matmul(None)
    cpu_linear._configured.cache_clear()
    monkeypatch.setenv("UL_CPU_MATMUL", "mkl")
    with pytest.raises(ValueError, match="UL_CPU_MATMUL must be auto, onednn or blas"):
        cpu_matmul()
    with pytest.raises(ValueError, match="onednn, blas or None"):
        set_cpu_matmul("fast")  # type: ignore[arg-type]


def test_the_operator_passes_opcheck() -> None:
    """The opaque operator torch.compile sees: its fake (shape) and autograd registrations agree
    with what it computes."""
    x = torch.randn(4, 8, 24, requires_grad=True)
    weight = torch.randn(40, 24, requires_grad=True)
    for bias in (torch.randn(40, requires_grad=True), None):
        torch.library.opcheck(onednn_linear_op, (x, weight, bias))


def test_a_compiled_layer_runs_the_operator_with_its_gradients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _spy(monkeypatch)  # the operator's body calls onednn_linear when inductor runs it
    set_cpu_matmul("onednn")
    layer, reference = Linear(8, 4), nn.Linear(8, 4)
    reference.load_state_dict(layer.state_dict())
    compiled = torch.compile(layer, dynamic=True)
    for rows in (32, 48):  # two shapes: the second compiles with dynamic sizes
        x = torch.randn(rows, 8, requires_grad=True)
        x_ref = x.detach().clone().requires_grad_(True)
        got, want = compiled(x), reference(x_ref)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        grad = torch.randn_like(got)
        got.backward(grad)
        want.backward(grad)
        torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(layer.weight.grad, reference.weight.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(layer.bias.grad, reference.bias.grad, rtol=1e-5, atol=1e-5)
    assert len(calls) == 2  # one forward per shape went through the operator
