"""Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) by GPU name, for model FLOPs utilisation
(MFU = achieved FLOP/s ÷ peak). Vendor datasheet figures; matched in order against
`torch.cuda.get_device_name()` (case-insensitive), so more specific names come first."""

from __future__ import annotations

BF16_DENSE_TFLOPS: tuple[tuple[str, float], ...] = (
    ("GH200", 989.4),
    ("H200", 989.4),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),  # SXM ("H100 80GB HBM3")
    ("H800", 989.4),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.1),
    ("L40", 181.0),
    ("L4", 121.0),
    ("A10", 125.0),
    ("RTX 4090", 165.2),
)


def bf16_peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU by name, or None when it is not in the table."""
    name = device_name.lower()
    for key, peak in BF16_DENSE_TFLOPS:
        if key.lower() in name:
            return peak
    return None


def mfu(achieved_tflops: float, peak_tflops: float | None) -> float | None:
    return None if not peak_tflops else achieved_tflops / peak_tflops
