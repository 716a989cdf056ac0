"""Timing loops the benchmark scripts share (no flags here, so any script or test can import it)."""

from __future__ import annotations

import math
import time


def block_timings(step, repeats: int, steps: int, sync, min_block_s: float = 0.0) -> list[float]:
  """Seconds per call of `step()` in `repeats` timed blocks of at least `steps` calls (more where a
  block would last under min_block_s: a 30 ms step timed twice swings by a third), after two warm-up
  calls; `sync(result)` waits for the device at the end of each block."""
  for _ in range(2):
    sync(step())
  t = time.perf_counter()
  sync(step())
  steps = max(steps, math.ceil(min_block_s / max(time.perf_counter() - t, 1e-6)))
  out = []
  for _ in range(repeats):
    t = time.perf_counter()
    for _ in range(steps):
      r = step()
    sync(r)
    out.append((time.perf_counter() - t) / steps)
  return out
