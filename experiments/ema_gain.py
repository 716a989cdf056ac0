"""Does the parameters' moving average validate better than the raw parameters? Read from runs
trained with `train.ema_decay` > 0, which validate both every epoch (`val_one_shot` and its
`_ema` or `_raw` twin in `metrics.jsonl`): a table of the best epoch's and the last epoch's
validation per seed, mean +- sd and the average's gain paired by seed, and a figure of both curves.
With --reference (one validation figure per workdir, e.g. the same seeds of another config), the
raw parameters' best is also compared with it, paired by seed. Reads metrics only: no test data.

  python experiments/ema_gain.py runs/k16_s0 runs/k16_s1 runs/k16_s2 --reference=75.05,72.95,74.90 \
    --out=docs/ema_validation.png
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root

import numpy as np

from experiments import over_seeds  # noqa: E402


def raw_and_average(workdir: str) -> tuple[list[float], list[float], list[float]]:
  """(epochs, raw parameters' validation, moving average's validation) per validated epoch."""
  from siamese_jax import metrics  # pylint: disable=g-import-not-at-top

  rows = [r for r in metrics.read_metrics(workdir) if "val_one_shot" in r]
  if rows and "val_one_shot_ema" in rows[0]:
    raw, avg = "val_one_shot", "val_one_shot_ema"
  elif rows and "val_one_shot_raw" in rows[0]:
    raw, avg = "val_one_shot_raw", "val_one_shot"
  else:
    raise SystemExit(f"{workdir}: no moving-average validation in metrics.jsonl (train.ema_decay was 0)")
  return [r["epoch"] for r in rows], [r[raw] for r in rows], [r[avg] for r in rows]


def _row(label: str, xs: list[float], ref: list[float] | None) -> str:
  a = np.array(xs)
  gain = "" if ref is None else f"{np.mean(a - np.array(ref)):+.2f} +- {over_seeds.sd(a - np.array(ref)):.2f}"
  return f"| {label} | {' | '.join(f'{x:.2f}' for x in a)} | {a.mean():.2f} +- {over_seeds.sd(a):.2f} | {gain} |"


def table(workdirs: list[str], reference: list[float] | None = None) -> str:
  """Markdown: best and last-epoch validation of the raw parameters and of their average per workdir,
  with the average's gain over the raw parameters paired by workdir; with `reference` (one figure per
  workdir), two more rows: the raw and the average's best against it."""
  curves = [raw_and_average(w) for w in workdirs]
  best_raw, best_avg = [max(c[1]) for c in curves], [max(c[2]) for c in curves]
  last_raw, last_avg = [c[1][-1] for c in curves], [c[2][-1] for c in curves]
  names = " | ".join(os.path.basename(w.rstrip("/")) for w in workdirs)
  lines = [f"| validation | {names} | mean +- sd | gain +- sd |", "|---" * (len(workdirs) + 3) + "|"]
  lines += [
    _row("best epoch, raw", best_raw, None),
    _row("best epoch, moving average (gain over raw)", best_avg, best_raw),
    _row("last epoch, raw", last_raw, None),
    _row("last epoch, moving average (gain over raw)", last_avg, last_raw),
  ]
  if reference is not None:
    if len(reference) != len(workdirs):
      raise SystemExit(f"--reference has {len(reference)} values for {len(workdirs)} workdirs")
    lines += [
      _row("--reference", reference, None),
      _row("best epoch, raw (gain over --reference)", best_raw, reference),
      _row("best epoch, moving average (gain over --reference)", best_avg, reference),
    ]
  return "\n".join(lines)


def plot(workdirs: list[str], path: str) -> None:
  """Validation against epoch, raw (solid) and moving average (dashed), one colour per workdir."""
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  fig, ax = plt.subplots(figsize=(6, 4))
  for i, w in enumerate(workdirs):
    epochs, raw, avg = raw_and_average(w)
    name = os.path.basename(w.rstrip("/"))
    ax.plot(epochs, raw, color=f"C{i}", label=f"{name} raw")
    ax.plot(epochs, avg, color=f"C{i}", linestyle="--", label=f"{name} moving average")
  ax.set_xlabel("epoch")
  ax.set_ylabel("validation 20-way one-shot (%)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main(argv: list[str]) -> None:
  workdirs = [a for a in argv if not a.startswith("--")]
  opts = dict(a[2:].split("=", 1) for a in argv if a.startswith("--"))
  unknown = set(opts) - {"reference", "out"}
  if unknown or not workdirs:
    raise SystemExit(f"usage: ema_gain.py WORKDIR... [--reference=A,B,...] [--out=PNG] (unknown: {sorted(unknown)})")
  reference = [float(x) for x in opts["reference"].split(",")] if "reference" in opts else None
  print(table(workdirs, reference))
  if "out" in opts:
    plot(workdirs, opts["out"])
    print(f"figure: {opts['out']}")


if __name__ == "__main__":
  main(sys.argv[1:])
