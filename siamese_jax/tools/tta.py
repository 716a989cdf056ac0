"""Test-time augmentation on validation: does averaging over distortions help a trained model?

For each trained workdir (one per seed), scores the validation of its config (2,000 20-way
within-alphabet tasks on the validation alphabets, the tasks training chose its best epoch on)
with `oneshot.tta_scorer` for every number of copies and distortion strength (a factor on the
deviations of the training distortions from identity) and, with `--temperatures`, every way of
pooling the copies x copies pair logits (inf: their mean, as shipped; 0: their max; T > 0:
T * log mean exp(logit / T), between the two), and prints a table: accuracy per seed,
mean +- sd, and the gain over no TTA paired by seed (mean +- sd). Validation only: no test
alphabet or Lake run is read.

  python -m siamese_jax.tools.tta --workdirs=runs/cpu_s0,runs/cpu_s1,runs/cpu_s2 --copies=1,4,8 --strengths=1,0.5
  python -m siamese_jax.tools.tta --workdirs=... --copies=16 --strengths=2 --temperatures=inf,0,3,5
  python -m siamese_jax.tools.tta --workdirs=... --copies=1,16 --strengths=2 --alphabets=Avesta,ULOG --task_seed=2
  python -m siamese_jax.tools.tta --workdirs=... --copies=1,16 --strengths=2 --drawers=1-20 --lake_runs=2000 \
      --task_seed=3

With `--lake_runs=R`, the score is instead the accuracy on R fresh runs in Lake's format (one alphabet,
20 characters, one drawer's images the support and another's the queries; `evaluate.fresh_lake_runs`)
drawn from the validation alphabets and `--drawers` with `--task_seed`: the test's format on validation.
"""

from __future__ import annotations

import dataclasses
import math

from absl import app, flags

from siamese_jax import selection


def pooled_pair(pair, copies: int, temperature: float):
  """A TTA pair function pooling the copies x copies logits of `pair` (one pair of copies at a time):
  their max for temperature 0, else temperature * log mean exp(logit / temperature)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  def tta_pair(params, a, b):
    a, b = a.reshape(a.shape[:-1] + (copies, -1)), b.reshape(b.shape[:-1] + (copies, -1))

    def add(k, total):
      ai = jax.lax.dynamic_index_in_dim(a, k // copies, axis=-2, keepdims=False)
      bj = jax.lax.dynamic_index_in_dim(b, k % copies, axis=-2, keepdims=False)
      s = pair(params, ai, bj)
      return jnp.maximum(total, s) if temperature == 0 else jnp.logaddexp(total, s / temperature)

    start = jnp.full(jnp.broadcast_shapes(a.shape[:-2], b.shape[:-2]), -jnp.inf, jnp.float32)
    t = jax.lax.fori_loop(0, copies * copies, add, start)
    return t if temperature == 0 else temperature * (t - math.log(copies**2))

  return tta_pair


def drawer_list(spec: list[str] | None) -> list[int] | None:
  """Drawer numbers from flag items such as ["13", "14"] or ["1-20"]; None stays None."""
  if not spec:
    return None
  out = []
  for item in spec:
    lo, _, hi = item.partition("-")
    out.extend(range(int(lo), int(hi or lo) + 1))
  return out


def main(_):
  f = flags.FLAGS
  from siamese_jax import augment, evaluate, oneshot, train  # pylint: disable=g-import-not-at-top

  variants = [
    (int(c), float(s), float(t))
    for c in f.copies
    for s in f.strengths
    for t in f.temperatures
    if int(c) > 1 or (s == f.strengths[0] and t == f.temperatures[0])
  ]
  acc = {v: [] for v in variants}
  drawers = drawer_list(f.drawers)
  for wd in f.workdirs:
    config, params, chars, base = selection.load_validation(wd, f.num_tasks, f.alphabets, f.task_seed, drawers)
    for v in variants:
      c, s, t = v
      scorer = oneshot.tta_scorer(base, c, augment.scaled(config.augment, s), f.tta_seed)
      if c > 1 and t != math.inf:
        scorer = dataclasses.replace(scorer, pair=pooled_pair(base.pair, c, t))
      if f.lake_runs:
        r = evaluate.fresh_lake_runs(scorer, chars, f.lake_runs, config.validation.seed, config.eval.batch_size)
        m = {"val_one_shot": r["accuracy"]}
        detail = f"[{r['ci95_runs'][0]:.2f}, {r['ci95_runs'][1]:.2f}] over {r['num_runs']} Lake-format runs"
      else:
        m = train.validation_metrics(config, params, chars, scorer)
        detail = f"verification {m['val_verification']:.2f}"
      acc[v].append(m["val_one_shot"])
      print(
        f"{wd}  copies {c} strength {s} temperature {t}: val {m['val_one_shot']:.2f}  {detail}",
        flush=True,
      )
  ref = {v: acc[variants[0]] for v in variants}
  labels = ["copies", "strength", "temperature"]
  print("\n" + selection.gain_table(labels, acc, ref, f.workdirs))


if __name__ == "__main__":  # flags defined here, so that tests can import this module beside other scripts
  flags.DEFINE_list("workdirs", None, "Trained workdirs, one per seed.", required=True)
  flags.DEFINE_list("copies", ["1", "4", "8"], "Versions of each image (1: no TTA).")
  flags.DEFINE_list("strengths", ["1.0", "0.5"], "Factors on the training distortions' deviation from identity.")
  flags.DEFINE_list("temperatures", ["inf"], "Pooling of pair logits over copies: inf mean, 0 max, else log-mean-exp.")
  flags.DEFINE_integer("tta_seed", 0, "Seed of the fixed distortions.")
  flags.DEFINE_integer("num_tasks", 2000, "Validation tasks (the same for every workdir, whatever it trained with).")
  flags.DEFINE_list("alphabets", None, "Validation alphabets to score on (default: each workdir's own).")
  flags.DEFINE_integer("task_seed", None, "Seed of the validation tasks (default: each workdir's validation.seed).")
  flags.DEFINE_list("drawers", None, "Validation drawers, e.g. 13,14 or 1-20 (default: each workdir's own).")
  flags.DEFINE_integer("lake_runs", 0, "Score this many fresh Lake-format runs instead of the validation's tasks.")
  app.run(main)
