"""Keep freed memory in the process instead of handing it back to the kernel after every tensor.

glibc's malloc serves large blocks (above 128 KiB .. 32 MiB) with mmap and unmaps them on free, so
every training step or frame re-faults and zeroes its activation memory page by page. On the 2-core
VMs we run on this cost as much as the convolutions: one ResUNet training step (16 x 128 x 256, one
thread) spent 10 s in the kernel per 24 s of user time; with the settings below, 2.8 s
(benchmarks/results/demo.md). The process then keeps its peak heap for reuse, which is what a
long-running trainer, inspector or line process wants anyway.

`STEELSCAN_MALLOC=system` leaves malloc as it is. Not glibc (musl, macOS, Windows): nothing happens.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# mallopt parameters (glibc malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Serve every allocation from the heap and never trim it (glibc mallopt); True when applied.
    Idempotent; call early, before the big allocations (the CLI does it for every command)."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("STEELSCAN_MALLOC", "").lower() == "system":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    _applied = bool(mallopt(M_MMAP_MAX, 0) and mallopt(M_TRIM_THRESHOLD, 2**31 - 1)
                    and mallopt(M_TOP_PAD, 64 << 20))
    return _applied
