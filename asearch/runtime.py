"""Device choice, seeding and CPU allocator tuning: CUDA when present, CPU otherwise; nothing is placed on a device
in constructors."""
from __future__ import annotations

import ctypes
import ctypes.util
import random
import sys
from typing import Optional, Union

import numpy as np
import torch

__all__ = ["resolve_device", "seed_everything", "derive_seed", "keep_freed_memory", "plain_progress"]


def resolve_device(device: Optional[Union[str, torch.device]] = None) -> torch.device:
    """``None``/``"auto"`` -> CUDA if available else CPU; otherwise ``torch.device(device)``."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (e.g. ``(seed, step)``), the same on every process and every run."""
    state = np.random.SeedSequence([int(p) % (2 ** 63) for p in parts]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


_KEPT = False
# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory(limit_mb: int = 1024) -> bool:
    """Make glibc keep freed memory for reuse instead of handing it back to the kernel (Linux/glibc only).

    By default glibc serves every allocation above its mmap threshold (128 KiB, growing to at most 32 MiB) with
    a fresh ``mmap`` and returns it with ``munmap`` when freed. A CPU forward pass allocates and frees tensors of
    a few MiB for every layer, so each one page-faults its memory in anew: on batched tracking (20 videos of the
    tiny supernet, 2 threads) that cost about a quarter of the time (``benchmarks/bench_search.py``). Raising the
    mmap and trim thresholds to ``limit_mb`` keeps such blocks in the heap, where the next tensor reuses them.
    The process keeps its peak heap instead of shrinking after it (the price).

    Process-wide and idempotent; returns whether the setting is in effect (``False`` off glibc).
    """
    global _KEPT
    if _KEPT:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    limit = int(limit_mb) << 20
    # older glibc caps the mmap threshold at 32 MiB (on 64-bit) and rejects more: fall back to the cap
    mmap_ok = mallopt(_M_MMAP_THRESHOLD, limit) == 1 or mallopt(_M_MMAP_THRESHOLD, 32 << 20) == 1
    _KEPT = mmap_ok and mallopt(_M_TRIM_THRESHOLD, limit) == 1 and mallopt(_M_TOP_PAD, 64 << 20) == 1
    return _KEPT


def plain_progress(progress: bool) -> bool:
    """Whether long work prints plain progress lines: progress bars off (``--no-progress``), or stdout not a
    terminal (a job scheduler's log file, where a bar is noise)."""
    return not progress or not (hasattr(sys.stdout, "isatty") and sys.stdout.isatty())
