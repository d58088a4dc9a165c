"""Training precision that fits the hardware: `train.precision` = auto | fp32 | bf16.

- "auto" (the default): bf16 autocast where the device runs bf16 natively, fp32 elsewhere.
  Native means a CUDA GPU of compute capability ≥ 8.0 (Ampere and newer), or a CPU with
  AVX512-BF16 or AMX-BF16 (x86) or the BF16 extension (aarch64), read from /proc/cpuinfo.
  torch's CPU capability string ("AVX2", "AVX512", …) does not say whether bf16 is native,
  so it is used only to reject CPUs without AVX512 when /proc/cpuinfo cannot be read.
- "fp32" / "bf16": exactly that, as in configs stored before "auto" existed. bf16 without
  native support still trains (autocast emulates it) but warns once per device type: on this
  project's development CPU (AVX2) a bf16 step was 12–14× slower than fp32.

The loop runs network bodies under autocast only; λ, weights and reductions stay fp32 (DESIGN).
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from pathlib import Path
from typing import Any, Literal

import torch

Precision = Literal["auto", "fp32", "bf16"]
ResolvedPrecision = Literal["fp32", "bf16"]

CPUINFO = Path("/proc/cpuinfo")
NATIVE_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
BF16_CPU_SLOWDOWN = "12–14×"  # measured on the development CPU (AVX2), bf16 vs fp32 step time

_warned: set[str] = set()


class PrecisionWarning(UserWarning):
    """bf16 was asked for on hardware that only emulates it."""


def cpuinfo_field(keys: tuple[str, ...], cpuinfo: Path = CPUINFO) -> str | None:
    """The value of the first line of `cpuinfo` whose key is one of `keys` (lower case), or None
    if there is none or the file is unreadable."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in keys:
            return value
    return None


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str] | None:
    """The CPU feature flags ("flags" on x86, "Features" on aarch64), or None if unreadable."""
    value = cpuinfo_field(("flags", "features"), cpuinfo)
    return None if value is None else frozenset(value.split())


@functools.lru_cache(maxsize=1)
def system_cpu_flags() -> frozenset[str] | None:
    """This machine's CPU flags, read once per process."""
    return cpu_flags()


def cpu_vendor(cpuinfo: Path = CPUINFO) -> str | None:
    """The CPU vendor ("vendor_id" on x86, e.g. GenuineIntel, AuthenticAMD), or None."""
    value = cpuinfo_field(("vendor_id",), cpuinfo)
    return None if value is None else value.strip()


@functools.lru_cache(maxsize=1)
def system_cpu_vendor() -> str | None:
    """This machine's CPU vendor, read once per process."""
    return cpu_vendor()


def native_bf16(device: torch.device, *, flags: frozenset[str] | None = None) -> tuple[bool, str]:
    """Whether `device` runs bf16 natively, and why (one phrase for messages).

    `flags` overrides /proc/cpuinfo (tests); CUDA is asked through torch.cuda."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        if major >= 8:
            return True, f"CUDA compute capability {major}.{minor} has bf16 tensor cores"
        return False, f"CUDA compute capability {major}.{minor} < 8.0 has no bf16 tensor cores"
    if device.type == "cpu":
        if flags is None:
            flags = system_cpu_flags()
        if flags is None:
            capability = torch.backends.cpu.get_cpu_capability()
            return False, f"/proc/cpuinfo unreadable (torch CPU capability {capability})"
        native = sorted(flags & NATIVE_BF16_CPU_FLAGS)
        if native:
            return True, f"CPU flags {', '.join(native)}"
        return False, "the CPU has no AVX512-BF16/AMX-BF16/BF16 instructions"
    return False, f"no native-bf16 detection for device type {device.type!r}"


def resolve_precision(
    requested: str, device: torch.device, *, flags: frozenset[str] | None = None
) -> ResolvedPrecision:
    """auto → bf16 where native else fp32; explicit values stay, bf16 warns once if emulated."""
    if requested not in ("auto", "fp32", "bf16"):
        raise ValueError(f"train.precision={requested!r}; choose one of auto, fp32, bf16")
    if requested == "fp32":
        return "fp32"
    native, why = native_bf16(device, flags=flags)
    if requested == "auto":
        return "bf16" if native else "fp32"
    if not native:
        warn_emulated_bf16(device, why)
    return "bf16"


def warn_emulated_bf16(device: torch.device, why: str) -> None:
    """One warning per device type and process."""
    if device.type in _warned:
        return
    _warned.add(device.type)
    slowdown = BF16_CPU_SLOWDOWN if device.type == "cpu" else "much"
    warnings.warn(
        f"train.precision=bf16 on {device.type}, which has no native bf16 ({why}): it trains, "
        f"but expect steps about {slowdown} slower than fp32; train.precision=auto picks fp32 "
        "here",
        PrecisionWarning,
        stacklevel=3,
    )


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast for network bodies; fp32 runs without it ("auto" is resolved first)."""
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
