"""How a model is chosen: the per-epoch validation protocols (`PROTOCOLS`) and gains paired by seed.

A protocol scores a scorer on the validation characters and returns its accuracy as `val_one_shot`
(with a 95% interval, `_lo` and `_hi`): the figure training keeps its best epoch by, early stopping
reads and a sweep ranks by.

  within_alphabet  `validation.num_tasks` N-way (`validation.n_way`) one-shot tasks within an alphabet
  lake_runs        `validation.lake_runs` fresh runs in the format of Lake's 20 runs (20 characters of
                   one alphabet, one drawer's images the support, another's the queries): the test's
                   format on the validation alphabets and drawers
"""

from __future__ import annotations

import os

import numpy as np


def sd(xs) -> float:
  """Sample standard deviation (ddof 1); nan for fewer than two values."""
  return float(np.std(xs, ddof=1)) if len(xs) > 1 else float("nan")


class ValidationError(ValueError):
  """Validation characters a protocol cannot draw its tasks from (reported as a config error)."""


def within_alphabet(scorer, chars, validation, batch_size: int) -> dict[str, float]:
  """N-way within-alphabet one-shot accuracy on the same tasks every epoch, with its Wilson interval."""
  from siamese_jax import evaluate, oneshot  # pylint: disable=g-import-not-at-top

  v = validation
  rows, _ = evaluate.nway_accuracy(
    scorer, chars, "validation", (v.n_way,), (oneshot.WITHIN_ALPHABET,), 1, v.num_tasks, v.seed, batch_size
  )
  if rows[0]["num_tasks"] == 0:
    raise ValidationError(f"config.validation.n_way: no validation alphabet has {v.n_way} characters")
  lo, hi = rows[0]["ci95"]
  return {"val_one_shot": rows[0]["accuracy"], "val_one_shot_lo": lo, "val_one_shot_hi": hi}


def lake_runs(scorer, chars, validation, batch_size: int) -> dict[str, float]:
  """Accuracy on fresh Lake-format runs of the validation characters, with a bootstrap interval over runs."""
  from siamese_jax import evaluate  # pylint: disable=g-import-not-at-top

  v = validation
  r = evaluate.fresh_lake_runs(scorer, chars, v.lake_runs, v.seed, batch_size)
  if not r.get("total"):
    raise ValidationError("config.validation.alphabets: no validation alphabet has 20 characters")
  lo, hi = r["ci95_runs"]
  return {"val_one_shot": r["accuracy"], "val_one_shot_lo": lo, "val_one_shot_hi": hi}


PROTOCOLS = {"within_alphabet": within_alphabet, "lake_runs": lake_runs}


def paired_gain(values, reference) -> tuple[float, float]:
  """(mean, sd) of values[i] - reference[i]: a candidate's gain over a baseline, paired by seed."""
  d = np.asarray(values, float) - np.asarray(reference, float)
  return float(d.mean()), sd(d)


def verdict(gain: float, spread: float) -> str:
  """ "better" or "worse" when the mean gain exceeds the baseline's seed spread (sd), else "a tie"."""
  if not np.isfinite(spread) or abs(gain) <= spread:
    return "a tie"
  return "better" if gain > 0 else "worse"


def against_baseline(values: dict[int, float], reference: dict[int, float]) -> dict | None:
  """A candidate's {seed: value} against the baseline's over the seeds both have: {"gain", "gain_sd"}
  (`paired_gain`), "spread" (the baseline's sd over those seeds), "verdict" and "seeds"; None when
  they share no seed."""
  seeds = sorted(set(values) & set(reference))
  if not seeds:
    return None
  gain, gain_sd = paired_gain([values[s] for s in seeds], [reference[s] for s in seeds])
  spread = sd([reference[s] for s in seeds])
  return {"gain": gain, "gain_sd": gain_sd, "spread": spread, "verdict": verdict(gain, spread), "seeds": len(seeds)}


def load_validation(wd: str, num_tasks: int, alphabets=None, task_seed: int | None = None, drawers=None):
  """(config, params, validation characters, the model's plain scorer) of a trained workdir, its
  validation set to `num_tasks` tasks (the same tasks for every workdir, whatever it trained with)
  on `alphabets` and `drawers` drawn with `task_seed` (None: those it trained with). A config without
  `data.manual_dir` reads Omniglot from $OMNIGLOT_DIR."""
  from siamese_jax import input_pipeline, oneshot, workdir  # pylint: disable=g-import-not-at-top

  config = workdir.read_config(wd)
  config.data.manual_dir = config.data.manual_dir or os.environ.get("OMNIGLOT_DIR")
  config.validation.num_tasks = num_tasks
  trained_on = set(config.data.extra_train_alphabets)
  if alphabets:
    if trained_on & set(alphabets):
      raise ValueError(f"{wd} trained on {sorted(trained_on & set(alphabets))}: not a validation of it")
    config.validation.alphabets = tuple(alphabets)
  if task_seed is not None:
    config.validation.seed = task_seed
  if drawers:
    config.validation.drawers = tuple(drawers)
  params = workdir.load_params(wd, config.model)
  chars = input_pipeline.held_out_characters(
    config.validation, config.data, config.model.image_size, config.model.channels
  )
  return config, params, chars, oneshot.config_scorer(params, config.model)


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
    gain, gain_sd = paired_gain(a, r)
    lines.append(f"| {key} | {cells} | {a.mean():.2f} +- {sd(a):.2f} | {gain:+.2f} +- {gain_sd:.2f} |")
  return "\n".join(lines)
