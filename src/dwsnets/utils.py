"""Process-level helpers."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["tune_cpu_allocator"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_tuned = False


def tune_cpu_allocator(keep_bytes: int = 1 << 30) -> bool:
    """Stop glibc from handing freed tensor memory straight back to the OS.

    By default glibc serves large blocks with ``mmap`` and trims the heap eagerly, so a
    tensor of a few MiB allocated in every training step page-faults on every step. That
    costs as much as the arithmetic for weight-space models (measured in
    ``benchmarks/bench_dwsnet.py --tuned-malloc``). This raises glibc's mmap and trim
    thresholds (``mallopt``) so freed blocks are reused, the remedy PyTorch's CPU
    performance guide gives with jemalloc or tcmalloc. The cost is that the process keeps
    up to ``keep_bytes`` of freed memory. It acts on the whole process, so the library
    never calls it on import; ``dwsnets`` commands call it.

    Returns True when the settings took effect (glibc only), False otherwise.
    """
    global _tuned
    if _tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mmap_ok = mallopt(_M_MMAP_THRESHOLD, min(keep_bytes, 1 << 30) // 2 if keep_bytes > 0 else 0)
    trim_ok = mallopt(_M_TRIM_THRESHOLD, min(keep_bytes, (1 << 31) - 1))
    _tuned = bool(mmap_ok and trim_ok)
    return _tuned
