"""Host-side process settings that speed up XLA on CPU.

XLA's CPU runtime allocates and frees its large temporaries every step. With
glibc's defaults those above the (dynamic) mmap threshold are mmap'ed and
unmapped each time, so every step page-faults them in afresh: on a 2-core
machine about 40% of a `:cpu` train step was kernel time. Keeping freed memory
in the heap (a high mmap threshold, no trimming) removes most of it; see
`experiments/bench_train.py` for the measurement.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_DISABLE_ENV = "SIAMESE_JAX_NO_MALLOC_TUNING"


def tune_allocator(threshold: int = 2**31 - 1) -> bool:
  """Sets glibc's mmap and trim thresholds to `threshold` bytes; True if applied.

  A no-op (False) off Linux/glibc, or when $SIAMESE_JAX_NO_MALLOC_TUNING is set.
  mallopt takes a C int, so larger values are capped at 2**31 - 1. Process-wide and irreversible:
  freed memory is kept for reuse, so the resident size stays near the peak.
  """
  if os.environ.get(_DISABLE_ENV) or not sys.platform.startswith("linux"):
    return False
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    mallopt = libc.mallopt
  except (OSError, AttributeError):  # musl or another libc without mallopt
    return False
  mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
  value = min(threshold, 2**31 - 1)
  return bool(mallopt(_M_MMAP_THRESHOLD, value)) and bool(mallopt(_M_TRIM_THRESHOLD, value))
