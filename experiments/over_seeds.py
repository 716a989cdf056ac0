"""What the validation experiments over seeds share: a trained workdir's validation set-up, and a
table of variants with accuracy per seed, mean +- sd and the gain over a reference paired by seed.

Used by `tta.py` and `candidate_centering.py`; no flags here, so tests can import it beside any script.
"""

from __future__ import annotations

import os

import numpy as np


def sd(xs) -> float:
  """Sample standard deviation (ddof 1); nan for fewer than two values."""
  return float(np.std(xs, ddof=1)) if len(xs) > 1 else float("nan")


def load_validation(wd: str, num_tasks: int, alphabets=None, task_seed: int | None = None, drawers=None):
  """(config, params, validation characters, the model's plain scorer) of a trained workdir, its
  validation set to `num_tasks` tasks (the same tasks for every workdir, whatever it trained with)
  on `alphabets` and `drawers` drawn with `task_seed` (None: those it trained with). A config without
  `data.manual_dir` reads Omniglot from $OMNIGLOT_DIR."""
  from siamese_jax import input_pipeline, oneshot, workdir  # pylint: disable=g-import-not-at-top

  config = workdir.read_config(wd)
  config.data.manual_dir = config.data.manual_dir or os.environ.get("OMNIGLOT_DIR")
  config.validation.num_tasks = num_tasks
  trained_on = set(config.data.get("extra_train_alphabets") or ())
  if alphabets:
    if trained_on & set(alphabets):
      raise ValueError(f"{wd} trained on {sorted(trained_on & set(alphabets))}: not a validation of it")
    config.validation.alphabets = tuple(alphabets)
  if task_seed is not None:
    config.validation.seed = task_seed
  if drawers:
    config.validation.drawers = tuple(drawers)
  params = workdir.load_params(wd, config.model)
  chars = input_pipeline.held_out_characters(config.validation, config.data, config.model.image_size)
  return config, params, chars, oneshot.model_scorer(params, config.model.dtype, config.model.conv_impl)


def gain_table(labels: list[str], acc: dict, ref: dict, workdirs: list[str]) -> str:
  """Markdown: a row per variant of `acc` ({variant: [accuracy per workdir]}) headed by `labels`
  (one column name per element of a variant tuple), then each workdir's accuracy, mean +- sd, and the
  gain over `ref[variant]` (the reference's accuracies per workdir) as mean +- sd paired by workdir."""
  names = " | ".join(os.path.basename(w.rstrip("/")) for w in workdirs)
  lines = [f"| {' | '.join(labels)} | {names} | mean +- sd | gain +- sd |"]
  lines.append("|---" * (len(labels) + len(workdirs) + 2) + "|")
  for v, xs in acc.items():
    a, r = np.array(xs), np.array(ref[v])
    key = " | ".join(f"{x:g}" for x in v)
    cells = " | ".join(f"{x:.2f}" for x in a)
    lines.append(f"| {key} | {cells} | {a.mean():.2f} +- {sd(a):.2f} | {np.mean(a - r):+.2f} +- {sd(a - r):.2f} |")
  return "\n".join(lines)
