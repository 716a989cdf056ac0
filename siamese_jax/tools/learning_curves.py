"""Learning curves of one or more training workdirs, side by side: a per-epoch table (validation
20-way one-shot with its 95% interval, verification, mean training loss, pairs seen, minutes) and
one figure of validation, verification and loss against wall-clock minutes.

  python -m siamese_jax.tools.learning_curves runs/koch_1h runs/matlab_1h --out=docs/paper_presets_1h.png

A workdir may be given as LABEL=PATH; the label defaults to the folder's name.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from siamese_jax import figures, input_pipeline, metrics
from siamese_jax import workdir as workdir_lib


def curves(workdir: str) -> dict:
  """Per-epoch rows {epoch, step, minutes, pairs, val, lo, hi, verification, loss}, the loss rows and
  the validation's N (`n_way`)."""
  config = workdir_lib.read_config(workdir)
  per_step = input_pipeline.pairs_per_step(config.train)
  rows = metrics.read_metrics(workdir)
  losses = [r for r in rows if "loss" in r]
  epochs, prev = [], 0
  for r in (r for r in rows if "val_one_shot" in r):
    window = [x["loss"] for x in losses if prev < x["step"] <= r["step"]]
    epochs.append(
      {
        "epoch": int(r["epoch"]),
        "step": r["step"],
        "minutes": r["elapsed_s"] / 60,
        "pairs": r["step"] * per_step,
        "val": r["val_one_shot"],
        "lo": r.get("val_one_shot_lo", float("nan")),
        "hi": r.get("val_one_shot_hi", float("nan")),
        "verification": r.get("val_verification", float("nan")),
        "loss": float(np.mean(window)) if window else float("nan"),
      }
    )
    prev = r["step"]
  return {"epochs": epochs, "losses": losses, "n_way": int(config.validation.n_way)}


def table(label: str, epochs: list[dict], n_way: int = 20) -> str:
  """Markdown: one row per epoch."""
  lines = [
    f"**{label}**",
    "",
    f"| epoch | step | pairs seen | minutes | validation {n_way}-way % [95%] | verification % | mean loss |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ]
  for e in epochs:
    lines.append(
      f"| {e['epoch']} | {e['step']} | {e['pairs']:,} | {e['minutes']:.1f} | {e['val']:.2f} [{e['lo']:.1f}, "
      f"{e['hi']:.1f}] | {e['verification']:.1f} | {e['loss']:.4f} |"
    )
  return "\n".join(lines)


def plot(runs: dict[str, dict], path: str) -> None:
  """Validation one-shot (with its band), verification and loss against minutes, one line per run."""
  plt = figures.pyplot()

  fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
  for label, run in runs.items():
    ep = run["epochs"]
    t = np.array([e["minutes"] for e in ep])
    (line,) = axes[0].plot(t, [e["val"] for e in ep], marker=".", label=label)
    axes[0].fill_between(t, [e["lo"] for e in ep], [e["hi"] for e in ep], alpha=0.2, color=line.get_color())
    axes[1].plot(t, [e["verification"] for e in ep], marker=".", label=label)
    axes[2].plot([r["elapsed_s"] / 60 for r in run["losses"]], [r["loss"] for r in run["losses"]], label=label)
  ways = sorted({run["n_way"] for run in runs.values()})
  for n in ways:
    axes[0].axhline(100.0 / n, color="gray", ls=":", label=f"chance ({n}-way)")
  axes[1].axhline(50.0, color="gray", ls=":", label="chance")
  shown = "/".join(str(n) for n in ways)
  titles = (f"validation {shown}-way one-shot (%)", "validation verification (%)", "training loss")
  for ax, title in zip(axes, titles):
    ax.set_title(title)
    ax.set_xlabel("minutes")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  fig.tight_layout()
  figures.save(fig, path)
  plt.close(fig)


def main(argv: list[str]) -> None:
  out = next((a.split("=", 1)[1] for a in argv if a.startswith("--out=")), None)
  args = [a for a in argv if not a.startswith("--")]
  if not args:
    sys.exit("usage: python -m siamese_jax.tools.learning_curves [LABEL=]WORKDIR ... [--out=FIGURE.png]")
  runs = {}
  for a in args:
    label, path = a.split("=", 1) if "=" in a else (os.path.basename(a.rstrip("/")), a)
    if not os.path.exists(os.path.join(path, "config.json")):
      sys.exit(f"error: {path} is not a training workdir (no config.json)")
    runs[label] = curves(path)
    print(table(label, runs[label]["epochs"], runs[label]["n_way"]), end="\n\n")
  if out:
    plot(runs, out)
    print(f"figure: {out}")


if __name__ == "__main__":
  main(sys.argv[1:])
