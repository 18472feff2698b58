"""Keep freed memory in the process: the CLI's one process-wide allocator setting.

A training step allocates and frees the same large buffers every step (``[T, B, N]`` membranes,
spikes, their gradients). glibc's malloc hands big blocks back to the kernel (``mmap`` above a
threshold, heap trimming above another), so the next step page-faults and zeroes them again:
about 4 ms of an 18 ms step of ``bench/peers.py`` config a on one thread. With
``M_MMAP_MAX = 0`` and ``M_TRIM_THRESHOLD`` = 2 GiB (``mallopt``'s largest) the blocks stay in
the heap for reuse; the price is that the process keeps its high-water mark of memory until it
exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's malloc.h
_TRIM_THRESHOLD = 2**31 - 1


def retain_freed_memory() -> bool:
    """Set glibc's malloc to keep freed blocks; ``True`` if set, ``False`` where it does not
    apply (a C library other than glibc). Call it once, at the start of a process."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
