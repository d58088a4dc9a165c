"""Keep freed host memory in the process, so CPU training does not page-fault on every step.

PyTorch's CPU tensors come from the C library's `malloc`. With glibc's defaults, a block above the
mmap threshold (which starts at 128 KiB and adapts up to 32 MiB) is mapped for itself and unmapped
on `free`, and free memory at the top of the heap goes back to the kernel once it exceeds the trim
threshold (twice the mmap threshold). A training step allocates and frees the same activations
every step, so the kernel zero-fills the same pages again and again: the stage-2 preset (then a
ViT of width 128, depth 4) took 25,000–48,000 minor page faults per step, about 100–190 MiB of
fresh pages (benchmarks/throughput.py reports the count per step).

This fixes the mmap threshold at glibc's own ceiling of 32 MiB, so every block up to that size
comes from the heap, and raises the trim threshold to 1 GiB, so freed heap memory stays in the
process for the next step: the faults per step drop to a few hundred at most (0–512 in the
benchmark). The cost: up to 1 GiB of freed memory is not handed back to the system while the
process runs (at the default presets' sizes the peak resident memory did not visibly change:
docs/results.md §4). Set UL_KEEP_FREED_MEMORY=0 to keep glibc's defaults. Only glibc has these
settings; elsewhere (macOS, Windows, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

ENV_VARIABLE = "UL_KEEP_FREED_MEMORY"
# glibc's mallopt parameter numbers (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Blocks up to 32 MiB (glibc's largest adaptive threshold) come from the heap; free memory at the
# heap's top is handed back only beyond 1 GiB.
MMAP_THRESHOLD_BYTES = 32 << 20
TRIM_THRESHOLD_BYTES = 1 << 30

_applied = False


def keep_freed_memory() -> bool:
    """Fix glibc's mmap threshold at 32 MiB and raise its trim threshold to 1 GiB for this process
    (idempotent). Returns whether the setting is in effect: False without glibc or when
    UL_KEEP_FREED_MEMORY=0."""
    global _applied
    if _applied:
        return True
    if os.environ.get(ENV_VARIABLE, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; the trim threshold first, so that a refused mmap threshold
    # still leaves the heap untrimmed
    trimmed = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
    mapped = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    _applied = trimmed and mapped
    return _applied
