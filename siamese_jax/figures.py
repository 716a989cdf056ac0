"""Evaluation figures: accuracy vs N, scored test pairs, and the error analysis (`analysis`)."""

from __future__ import annotations

import os

import numpy as np


def pyplot():
  """matplotlib.pyplot, drawing off screen (Agg) except inline in a notebook."""
  import matplotlib  # pylint: disable=g-import-not-at-top

  if "inline" not in matplotlib.get_backend():  # in a notebook, figures show inline
    matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  return plt


# (set, scorer) -> legend label and style.
_LINES = {
  ("evaluation", "model"): ("model, evaluation alphabets", "-o"),
  ("train_alphabets", "model"): ("model, training alphabets", "--s"),
  ("evaluation", "model_no_tta"): ("model without test-time augmentation, evaluation alphabets", "-.d"),
  ("train_alphabets", "model_no_tta"): ("model without test-time augmentation, training alphabets", "--s"),
  ("evaluation", "pixel_1nn"): ("pixel 1-NN, evaluation alphabets", ":^"),
}


def plot_accuracy_vs_n(rows: list[dict], path: str) -> str:
  """One panel per protocol and k: accuracy (95% CI bars) vs N for each set and scorer, plus chance."""
  plt = pyplot()
  panels = list(dict.fromkeys((r["protocol"], r["shots"]) for r in rows))
  fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
  for ax, (protocol, k) in zip(axes[0], panels):
    cell = [r for r in rows if r["protocol"] == protocol and r["shots"] == k]
    ns = sorted({r["n_way"] for r in cell})
    for (set_name, scorer), (label, style) in _LINES.items():
      pts = [r for r in cell if r["set"] == set_name and r["scorer"] == scorer and r["num_tasks"] > 0]
      if not pts:
        continue
      x = np.array([r["n_way"] for r in pts])
      y = np.array([r["accuracy"] for r in pts])
      # Clipped at 0: at 0% or 100% the interval's edge equals the estimate up to rounding.
      lo = np.maximum(y - np.array([r["ci95"][0] for r in pts]), 0)
      hi = np.maximum(np.array([r["ci95"][1] for r in pts]) - y, 0)
      ax.errorbar(x, y, yerr=[lo, hi], fmt=style, capsize=3, label=label, markersize=4)
    ax.plot(ns, [100.0 / n for n in ns], "k-", alpha=0.4, label="chance (100/N)")
    ax.set_title(f"{protocol}, {k}-shot")
    ax.set_xlabel("N (ways)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  fig.tight_layout()
  save(fig, path)
  plt.close(fig)
  return path


def plot_test_pairs(images_a, images_b, targets, scores, path: str, threshold: float = 0.5) -> str:
  """A grid of pairs (top and bottom image per column) titled with target, prediction and score."""
  plt = pyplot()
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
  save(fig, path)
  plt.close(fig)
  return os.path.abspath(path)


def save(fig, path: str) -> None:
  """Writes a figure as PNG at `path` atomically (a kill leaves the old file or none)."""
  from siamese_jax import workdir  # pylint: disable=g-import-not-at-top

  with workdir.atomic_file(path, "wb") as f:
    fig.savefig(f, format="png", dpi=100)


def _finish(fig, path: str | None):
  fig.tight_layout()
  if path:
    save(fig, path)
  return fig


def plot_accuracy_by_run(results: dict, path: str | None = None):
  """From an eval.json: accuracy of each of Lake's runs, the spread of the fresh runs' accuracy,
  and the fresh runs' accuracy per test alphabet (model); returns the figure."""
  plt = pyplot()
  lake = results.get("lake_runs", {}).get("results", {}).get("model")
  fresh = results.get("fresh_lake_runs", {}).get("model", {})
  fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
  if lake:
    acc = 100.0 - np.array(lake["per_run_error"])
    axes[0].bar(np.arange(1, len(acc) + 1), acc, color="tab:blue")
    axes[0].axhline(lake["accuracy"], color="k", lw=1, label=f"mean {lake['accuracy']:.1f}%")
    axes[0].legend(loc="lower right", fontsize=8)
  axes[0].set(title="Lake's official runs", xlabel="run", ylabel="accuracy (%)", ylim=(0, 100))
  if fresh.get("per_run_accuracy"):
    axes[1].hist(fresh["per_run_accuracy"], bins=np.arange(-2.5, 105, 5), color="tab:orange")
    axes[1].axvline(fresh["accuracy"], color="k", lw=1, label=f"mean {fresh['accuracy']:.1f}%")
    axes[1].legend(loc="upper left", fontsize=8)
  by_alphabet = {
    "fresh runs": fresh.get("per_alphabet_accuracy", {}),
    "Lake's runs": (lake or {}).get("per_alphabet_accuracy", {}),
  }
  names = sorted(set().union(*by_alphabet.values()))
  for k, (label, acc) in enumerate(by_alphabet.items()):
    y = np.arange(len(names)) + 0.4 * k
    axes[2].barh(y, [acc.get(n, 0.0) for n in names], height=0.4, label=label, color=("tab:orange", "tab:blue")[k])
  axes[2].set_yticks(np.arange(len(names)) + 0.2, names)
  if names:
    axes[2].legend(loc="lower right", fontsize=8)
  axes[1].set(title=f"{fresh.get('num_runs', 0)} fresh Lake-format runs", xlabel="run accuracy (%)", ylabel="runs")
  axes[2].set(title="accuracy by test alphabet", xlabel="accuracy (%)", xlim=(0, 100))
  return _finish(fig, path)


def plot_confusions(confusions: list[dict], path: str | None = None):
  """One column per confusion (`analysis.lake_confusions`): query, chosen and true candidate with logits."""
  plt = pyplot()
  n = max(len(confusions), 1)
  fig, axes = plt.subplots(3, n, figsize=(1.8 * n, 6), squeeze=False)
  for i, e in enumerate(confusions):
    for row, (key, label) in enumerate((("query", "query"), ("chosen", "chosen"), ("true", "true"))):
      ax = axes[row, i]
      ax.imshow(np.asarray(e[key])[..., 0], cmap="gray", vmin=0, vmax=255)
      score = "" if key == "query" else f" {e[key + '_score']:.1f}"
      ax.set_title(f"{e['run']}/{e['item'] + 1}" if key == "query" else f"{label}{score}", fontsize=8)
  for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
  fig.suptitle("worst confusions on Lake's runs (logit of each candidate)")
  return _finish(fig, path)


def plot_roc_and_reliability(fpr, tpr, auc: float, rel: dict, path: str | None = None):
  """ROC curve with its AUC, and the reliability diagram of `analysis.reliability`."""
  plt = pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
  axes[0].plot(fpr, tpr, label=f"AUC {auc:.3f}")
  axes[0].plot([0, 1], [0, 1], "k:", alpha=0.5)
  axes[0].set(title="verification ROC", xlabel="false-positive rate", ylabel="true-positive rate")
  axes[0].legend(loc="lower right")
  axes[1].plot([0, 1], [0, 1], "k:", alpha=0.5, label="perfect calibration")
  axes[1].plot(rel["mean_p"], rel["observed"], "-o", label=f"model (ECE {rel['ece']:.3f})")
  axes[1].set(title="reliability", xlabel="predicted probability (bin mean)", ylabel="fraction same", xlim=(0, 1))
  axes[1].legend(loc="upper left")
  for ax in axes:
    ax.grid(alpha=0.3)
  return _finish(fig, path)
