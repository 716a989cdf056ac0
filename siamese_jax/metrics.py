"""Metrics output: JSON lines plus TensorBoard events, and curves as PNG."""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import jax
import numpy as np

METRICS_FILE = "metrics.jsonl"


class MetricsWriter:
  """Writes scalars to `<workdir>/metrics.jsonl` and TensorBoard; only process 0 writes."""

  def __init__(self, workdir: str, hparams: Mapping[str, Any] | None = None):
    from clu import metric_writers  # pylint: disable=g-import-not-at-top

    self._active = jax.process_index() == 0
    self._path = os.path.join(workdir, METRICS_FILE)
    self._tb = metric_writers.create_default_writer(
        workdir, just_logging=not self._active, asynchronous=False
    )
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


def read_metrics(workdir: str) -> list[dict]:
  """The rows of `<workdir>/metrics.jsonl` (empty if absent)."""
  path = os.path.join(workdir, METRICS_FILE)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def plot_curves(workdir: str, keys: tuple[str, ...], filename: str, title: str) -> str | None:
  """Plots metrics `keys` against step into `<workdir>/<filename>`; None if no data."""
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  rows = read_metrics(workdir)
  series = {k: np.array([(r["step"], r[k]) for r in rows if k in r]) for k in keys}
  series = {k: v for k, v in series.items() if len(v)}
  if not series:
    return None
  fig, axes = plt.subplots(1, len(series), figsize=(5 * len(series), 3.5), squeeze=False)
  for ax, (k, v) in zip(axes[0], series.items()):
    ax.plot(v[:, 0], v[:, 1], marker="." if len(v) < 50 else None)
    ax.set_xlabel("step")
    ax.set_ylabel(k)
    ax.grid(alpha=0.3)
  fig.suptitle(title)
  fig.tight_layout()
  path = os.path.join(workdir, filename)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
