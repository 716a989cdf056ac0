"""Evaluation figures: accuracy vs N, and a grid of scored test pairs."""

from __future__ import annotations

import os

import numpy as np


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  return plt


# (set, scorer) -> legend label and style.
_LINES = {
  ("evaluation", "model"): ("model, evaluation alphabets", "-o"),
  ("train_alphabets", "model"): ("model, training alphabets", "--s"),
  ("evaluation", "pixel_1nn"): ("pixel 1-NN, evaluation alphabets", ":^"),
}


def plot_accuracy_vs_n(rows: list[dict], path: str) -> str:
  """One panel per protocol: accuracy (95% CI bars) vs N for each set and scorer, plus chance."""
  plt = _pyplot()
  protocols = list(dict.fromkeys(r["protocol"] for r in rows))
  fig, axes = plt.subplots(1, len(protocols), figsize=(6 * len(protocols), 4.2), squeeze=False)
  for ax, protocol in zip(axes[0], protocols):
    ns = sorted({r["n_way"] for r in rows if r["protocol"] == protocol})
    for (set_name, scorer), (label, style) in _LINES.items():
      pts = [
        r
        for r in rows
        if r["protocol"] == protocol and r["set"] == set_name and r["scorer"] == scorer and r["num_tasks"] > 0
      ]
      if not pts:
        continue
      x = np.array([r["n_way"] for r in pts])
      y = np.array([r["accuracy"] for r in pts])
      # Clipped at 0: at 0% or 100% the interval's edge equals the estimate up to rounding.
      lo = np.maximum(y - np.array([r["ci95"][0] for r in pts]), 0)
      hi = np.maximum(np.array([r["ci95"][1] for r in pts]) - y, 0)
      ax.errorbar(x, y, yerr=[lo, hi], fmt=style, capsize=3, label=label, markersize=4)
    ax.plot(ns, [100.0 / n for n in ns], "k-", alpha=0.4, label="chance (100/N)")
    shots = sorted({r["shots"] for r in rows})
    ax.set_title(f"{protocol}, {'/'.join(map(str, shots))}-shot")
    ax.set_xlabel("N (ways)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def plot_test_pairs(images_a, images_b, targets, scores, path: str, threshold: float = 0.5) -> str:
  """A grid of pairs (top and bottom image per column) titled with target, prediction and score."""
  plt = _pyplot()
  n = len(targets)
  fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.8), squeeze=False)
  for i in range(n):
    pred = int(scores[i] >= threshold)
    for row, img in enumerate((images_a[i], images_b[i])):
      ax = axes[row, i]
      ax.imshow(np.asarray(img)[..., 0], cmap="gray", vmin=0, vmax=255)
      ax.set_xticks([])
      ax.set_yticks([])
    ok = pred == int(targets[i])
    axes[0, i].set_title(
      f"target {'same' if targets[i] else 'diff'}\npred {'same' if pred else 'diff'}\np={scores[i]:.2f}",
      fontsize=8,
      color="green" if ok else "red",
    )
  fig.suptitle("test pairs: target, prediction (threshold 0.5) and score")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return os.path.abspath(path)
