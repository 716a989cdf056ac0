"""Host-side facts and process settings: the CPU's vector/matrix extensions, and the
allocator tuning that speeds up XLA on CPU.

XLA's CPU runtime allocates and frees its large temporaries every step. With
glibc's defaults those above the (dynamic) mmap threshold are mmap'ed and
unmapped each time, so every step page-faults them in afresh: on a 2-core
machine about 40% of a `:cpu` train step was kernel time. Keeping freed memory
in the heap (a high mmap threshold, no trimming) removes most of it; see
`python -m siamese_jax.tools.bench_train` for the measurement.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
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


# /proc/cpuinfo flags that matter for float32/bfloat16 speed, in the order they are reported.
CPU_EXTENSIONS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


@functools.cache
def cpu_info(path: str = "/proc/cpuinfo") -> dict:
  """{"model": the CPU's name, "extensions": those of `CPU_EXTENSIONS` it has, "cores": logical CPUs}
  (read once per process and path).

  Read from /proc/cpuinfo (Linux x86); elsewhere the model is `platform.processor()` and
  no extension is known.
  """
  import platform  # pylint: disable=g-import-not-at-top

  model, flags = platform.processor() or platform.machine(), set()
  try:
    with open(path) as f:
      for line in f:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
          model = value.strip()
        elif key.strip() in ("flags", "Features"):
          flags |= set(value.split())
  except OSError:
    pass
  return {"model": model, "extensions": [e for e in CPU_EXTENSIONS if e in flags], "cores": os.cpu_count()}


def native_bfloat16(info: dict | None = None) -> bool:
  """Whether the CPU computes bfloat16 natively (AVX-512 BF16 or AMX); without it XLA:CPU
  emulates bfloat16 arithmetic through float32 and runs slower than float32."""
  ext = (info or cpu_info())["extensions"]
  return "avx512_bf16" in ext or "amx_bf16" in ext
