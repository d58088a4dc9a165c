"""The I3D network: TF "SAME" padding against hand-computed cases, units, shapes, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from unified_latents.metrics.i3d import (
    BATCH_NORM_EPS,
    InceptionI3d,
    Unit3D,
    max_pool_same,
    pad_same,
    tf_same_padding,
)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [
        # output ⌈n/s⌉; pad_total = (out − 1)·s + k − n, the extra pixel goes *after*
        (224, 7, 2, (2, 3)),  # Conv3d_1a: out 112, total 111·2 + 7 − 224 = 5
        (112, 3, 2, (0, 1)),  # MaxPool3d_2a: out 56, total 55·2 + 3 − 112 = 1 (torch pads 1, 1)
        (16, 7, 2, (2, 3)),  # Conv3d_1a over time
        (14, 2, 2, (0, 0)),  # MaxPool3d_5a: even size, nothing to pad
        (7, 2, 2, (0, 1)),  # odd size, even kernel: out 4, total 3·2 + 2 − 7 = 1
        (5, 3, 1, (1, 1)),  # stride 1: total k − 1
        (1, 3, 2, (1, 1)),  # out 1, total 0·2 + 3 − 1 = 2
        (9, 1, 1, (0, 0)),  # 1×1×1 conv
    ],
)
def test_tf_same_padding_hand_computed(
    size: int, kernel: int, stride: int, expected: tuple[int, int]
) -> None:
    assert tf_same_padding(size, kernel, stride) == expected


def test_tf_same_padding_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="≥ 1"):
        tf_same_padding(0, 3, 1)


def _row(values: list[float]) -> torch.Tensor:
    """A [1, 1, 1, 1, W] tensor: one row along the last axis."""
    return torch.tensor(values).view(1, 1, 1, 1, -1)


def test_same_max_pool_ignores_padding() -> None:
    # W = 5, kernel 2, stride 2: pad (0, 1) → windows [−3, −1], [−4, −2], [−5, pad]. Zero padding
    # would wrongly give 0 for the last window; TF's SAME pool gives −5.
    pooled = max_pool_same(_row([-3.0, -1.0, -4.0, -2.0, -5.0]), (1, 1, 2), (1, 1, 2))
    assert pooled.flatten().tolist() == [-1.0, -2.0, -5.0]
    # 3 × 3 window, stride 2 on W = 6: out 3, total 2·2 + 3 − 6 = 1 → pad (0, 1):
    # windows [0..2], [2..4], [4, 5, pad].
    pooled = max_pool_same(_row([1.0, 9.0, 2.0, 3.0, 7.0, 4.0]), (1, 1, 3), (1, 1, 2))
    assert pooled.flatten().tolist() == [9.0, 7.0, 7.0]


def _identity_norm_unit(kernel_w: int, stride_w: int, taps: list[float]) -> Unit3D:
    """A Unit3D along W only whose batch norm is the identity (var + ε = 1, mean = offset = 0)."""
    unit = Unit3D(1, 1, kernel=(1, 1, kernel_w), stride=(1, 1, stride_w))
    with torch.no_grad():
        unit.conv.weight.copy_(torch.tensor(taps).view(1, 1, 1, 1, -1))
        unit.moving_variance.fill_(1.0 - BATCH_NORM_EPS)
    return unit


def test_same_conv_hand_computed() -> None:
    x = _row([1.0, 2.0, 3.0, 4.0])
    # kernel 2, stride 1: pad (0, 1) → [1, 2, 3, 4, 0]; y_i = x_i + 10·x_{i+1} (correlation).
    unit = _identity_norm_unit(2, 1, [1.0, 10.0])
    assert unit(x).flatten().tolist() == [21.0, 32.0, 43.0, 4.0]
    # kernel 2, stride 2 on W = 5: pad (0, 1) → [1, 2, 3, 4, 5, 0] → 21, 43, 5.
    unit = _identity_norm_unit(2, 2, [1.0, 10.0])
    assert unit(_row([1.0, 2.0, 3.0, 4.0, 5.0])).flatten().tolist() == [21.0, 43.0, 5.0]
    # kernel 3, stride 2 on W = 4: out 2, total 1·2 + 3 − 4 = 1 → [1, 2, 3, 4, 0] → 123, 340
    # (torch's symmetric padding=1 would give [0, 1, 2, 3, 4, 0] → 12, 234).
    unit = _identity_norm_unit(3, 2, [100.0, 10.0, 1.0])
    assert unit(x).flatten().tolist() == [123.0, 340.0]


@pytest.mark.parametrize("kernel", [(3, 3, 3), (1, 1, 1), (1, 3, 5)])
def test_stride_one_fast_path_equals_explicit_same_padding(kernel: tuple[int, int, int]) -> None:
    x = torch.randn(2, 3, 5, 6, 7)
    unit = Unit3D(3, 4, kernel=kernel)
    assert unit.symmetric_padding is not None
    explicit = F.conv3d(pad_same(x, kernel, (1, 1, 1)), unit.conv.weight)
    scale = torch.rsqrt(unit.moving_variance + BATCH_NORM_EPS).view(-1, 1, 1, 1)
    torch.testing.assert_close(unit(x), F.relu(explicit * scale))
    pooled = F.max_pool3d(pad_same(x, kernel, (1, 1, 1), value=-torch.inf), kernel, 1)
    torch.testing.assert_close(max_pool_same(x, kernel, (1, 1, 1)), pooled)
    assert Unit3D(3, 4, kernel=(2, 3, 3)).symmetric_padding is None  # even kernel: explicit


def test_pad_same_leaves_valid_shapes_alone() -> None:
    x = torch.randn(1, 2, 4, 6, 6)
    assert pad_same(x, (1, 1, 1), (1, 1, 1)) is x


def test_unit_batch_norm_is_sonnet_inference_form() -> None:
    unit = Unit3D(2, 2)
    with torch.no_grad():
        unit.conv.weight.copy_(torch.eye(2).view(2, 2, 1, 1, 1))
        unit.moving_mean.copy_(torch.tensor([1.0, -2.0]))
        unit.moving_variance.copy_(torch.tensor([4.0, 0.25]))
        unit.offset.copy_(torch.tensor([0.5, -3.0]))
    x = torch.tensor([3.0, 1.0]).view(1, 2, 1, 1, 1)
    # relu((x − mean)/√(var + ε) + offset): channel 0 → 2/√4.001 + 0.5; channel 1 → 3/√0.251 − 3
    expected = torch.tensor(
        [2 / (4 + BATCH_NORM_EPS) ** 0.5 + 0.5, 3 / (0.25 + BATCH_NORM_EPS) ** 0.5 - 3.0]
    )
    torch.testing.assert_close(unit(x).flatten(), expected)
    unit.offset.data[0] = -5.0  # a negative pre-activation is cut by the ReLU
    assert unit(x).flatten()[0].item() == 0.0


@pytest.mark.parametrize("num_frames", [9, 16, 20])
def test_network_shapes_and_linear_head(num_frames: int) -> None:
    torch.manual_seed(0)
    network = InceptionI3d(num_classes=10, width_divisor=8).eval()
    videos = torch.rand(2, 3, num_frames, 224, 224) * 2 - 1
    with torch.no_grad():
        output = network(videos)
    assert output.logits.shape == (2, 10) and output.features.shape == (2, 1024 // 8)
    # The logits average a 1×1×1 conv over pooled time steps; the features average the same
    # steps, so by linearity logits = W · features + b.
    head = F.linear(output.features, network.logits.weight.flatten(1), network.logits.bias)
    torch.testing.assert_close(output.logits, head, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(output.features[0], output.features[1])


def test_network_rejects_bad_input() -> None:
    network = InceptionI3d(num_classes=10, width_divisor=8)
    with pytest.raises(ValueError, match="at least 9 frames"):
        network(torch.zeros(1, 3, 8, 224, 224))
    with pytest.raises(ValueError, match="224×224"):
        network(torch.zeros(1, 3, 16, 256, 256))
    with pytest.raises(ValueError, match=r"\[B, 3, T, H, W\]"):
        network(torch.zeros(1, 1, 16, 224, 224))
    with pytest.raises(ValueError, match="does not divide"):
        InceptionI3d(width_divisor=3)
