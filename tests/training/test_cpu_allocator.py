"""training/cpu_allocator.py, observed through glibc's own accounting (mallinfo2): with the setting,
a 24 MiB block comes from the heap and stays there after `free`, so the next one reuses its pages;
with UL_KEEP_FREED_MEMORY=0 (glibc's defaults in a fresh process) the same block is mapped for
itself and unmapped on `free`, so every allocation faults its pages in again. Each case runs in a
fresh interpreter, so the test process's own allocator state does not matter."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

PROBE = """
import ctypes
from unified_latents.training.cpu_allocator import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
applied = keep_freed_memory()
assert keep_freed_memory() == applied  # idempotent
before = libc.mallinfo2()
block = libc.malloc(24 << 20)
during = libc.mallinfo2()
libc.free(block)
after = libc.mallinfo2()
print(applied, during.hblkhd - before.hblkhd, after.arena - before.arena)
"""

BLOCK = 24 << 20
glibc_only = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the setting exists only for glibc",
)


def probe(setting: str | None) -> tuple[bool, int, int]:
    """(applied, bytes mapped for the block, bytes the heap kept after freeing it)"""
    env = {k: v for k, v in os.environ.items() if k != "UL_KEEP_FREED_MEMORY"}
    if setting is not None:
        env["UL_KEEP_FREED_MEMORY"] = setting
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0] == "True", int(out[1]), int(out[2])


@glibc_only
def test_a_large_block_comes_from_the_heap_and_stays_there() -> None:
    applied, mapped, kept = probe(None)
    assert applied
    assert mapped == 0
    assert kept >= BLOCK


@glibc_only
def test_opting_out_keeps_the_defaults_which_map_and_unmap_the_block() -> None:
    applied, mapped, kept = probe("0")
    assert not applied
    assert mapped >= BLOCK
    assert kept < BLOCK


def test_opting_out_applies_nothing_on_any_platform() -> None:
    assert probe("off")[0] is False
