"""Metrics output: JSON lines plus TensorBoard events, and curves as PNG."""

from __future__ import annotations

from collections.abc import Mapping
import json
import os
import time
from typing import Any

import jax
import numpy as np

METRICS_FILE = "metrics.jsonl"


class MetricsWriter:
  """Writes scalars to `<workdir>/metrics.jsonl` and TensorBoard; only process 0 writes."""

  def __init__(self, workdir: str, hparams: Mapping[str, Any] | None = None):
    from clu import metric_writers  # pylint: disable=g-import-not-at-top

    self._active = jax.process_index() == 0
    self._path = os.path.join(workdir, METRICS_FILE)
    self._tb = metric_writers.create_default_writer(workdir, just_logging=not self._active, asynchronous=False)
    if hparams and self._active:
      self._tb.write_hparams({k: _hparam(v) for k, v in hparams.items()})

  def write(self, step: int, scalars: Mapping[str, float]) -> None:
    scalars = {k: float(v) for k, v in scalars.items()}
    self._tb.write_scalars(step, scalars)
    if self._active:
      with open(self._path, "a") as f:
        f.write(json.dumps({"step": int(step), **scalars}) + "\n")

  def close(self) -> None:
    self._tb.flush()
    self._tb.close()


def _hparam(v):
  return v if isinstance(v, (int, float, str, bool)) else str(v)


def truncate(workdir: str, step: int) -> int:
  """Drops the records after `step` from `<workdir>/metrics.jsonl` (a resume from `step`); returns how many.

  Rewritten atomically. TensorBoard needs no such care: its reader discards the
  events of a run past a step that is written again (orphaned-data purge).
  """
  rows = read_metrics(workdir)
  keep = [r for r in rows if r["step"] <= step]
  if len(keep) == len(rows):
    return 0
  from siamese_jax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top

  with workdir_lib.atomic_file(os.path.join(workdir, METRICS_FILE)) as f:
    f.writelines(json.dumps(r) + "\n" for r in keep)
  return len(rows) - len(keep)


def read_metrics(workdir: str) -> list[dict]:
  """The rows of `<workdir>/metrics.jsonl` (empty if absent); a torn last line (a crash mid-write) is skipped."""
  path = os.path.join(workdir, METRICS_FILE)
  if not os.path.exists(path):
    return []
  rows = []
  with open(path) as f:
    for line in f:
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  return rows


class Elapsed:
  """Wall-clock seconds of a run: the last `elapsed_s` in `<workdir>/metrics.jsonl` (0 for a new
  run; after a resume, the restored step's) plus the seconds since this object was made."""

  def __init__(self, workdir: str):
    self._base = max((r["elapsed_s"] for r in read_metrics(workdir) if "elapsed_s" in r), default=0.0)
    self._start = time.time()

  def __call__(self) -> float:
    return self._base + time.time() - self._start


def plot_curves(workdir: str, keys: tuple[str, ...], filename: str, title: str, x: str = "step") -> str | None:
  """Plots metrics `keys` against `x` ("step", or another metric such as "elapsed_s", shown in
  minutes) into `<workdir>/<filename>`, with the band between `<key>_lo` and `<key>_hi` where
  the rows have them; None if no data."""
  from siamese_jax import figures  # pylint: disable=g-import-not-at-top

  plt = figures.pyplot()

  rows = [r for r in read_metrics(workdir) if x in r]
  scale = 60.0 if x == "elapsed_s" else 1.0
  series = {k: [r for r in rows if k in r] for k in keys}
  series = {k: v for k, v in series.items() if v}
  if not series:
    return None
  fig, axes = plt.subplots(1, len(series), figsize=(5 * len(series), 3.5), squeeze=False)
  for ax, (k, v) in zip(axes[0], series.items()):
    xs = np.array([r[x] / scale for r in v])
    ax.plot(xs, [r[k] for r in v], marker="." if len(v) < 50 else None)
    if all(f"{k}_lo" in r and f"{k}_hi" in r for r in v):
      ax.fill_between(xs, [r[f"{k}_lo"] for r in v], [r[f"{k}_hi"] for r in v], alpha=0.25, label="95% interval")
      ax.legend(loc="lower right")
    ax.set_xlabel("minutes" if x == "elapsed_s" else x)
    ax.set_ylabel(k)
    ax.grid(alpha=0.3)
  fig.suptitle(title)
  fig.tight_layout()
  path = os.path.join(workdir, filename)
  figures.save(fig, path)
  plt.close(fig)
  return path
