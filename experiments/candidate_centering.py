"""Candidate centering on validation: does penalising "hub" candidates help one-shot classification?

A task's query is assigned to argmax_c [s(q, c) - beta * r_c], where r_c is the mean of candidate
c's top-k scores against the task's other candidates (CSLS-style hubness correction; it uses only
the task's own support images, never other queries). beta = 0 is the evaluator's rule. Scores are
the workdir's scorer as the evaluator builds it (its test-time augmentation; runs trained before
TTA existed get `--tta_copies` at `--tta_strength`), on the 2,000 20-way within-alphabet tasks of
the validation alphabets. Prints a table per (k, beta): accuracy per seed, mean +- sd, and the gain
over beta = 0 paired by seed. Validation only: no test alphabet or Lake run is read.

  python experiments/candidate_centering.py --workdirs=runs/cpu_s0,runs/cpu_s1,runs/cpu_s2
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root

from absl import app, flags
import numpy as np

from experiments import over_seeds


def centered_accuracy(scores: np.ndarray, cand: np.ndarray, target: np.ndarray, k: int, beta: float) -> float:
  """Accuracy (%) of argmax_c [scores - beta * r_c]: scores [T, N], candidate-candidate scores
  cand [T, N, N] (diagonal ignored), target [T]; r_c is the mean of c's top-k off-diagonal scores."""
  n = cand.shape[-1]
  off = np.where(np.eye(n, dtype=bool), -np.inf, cand)
  r = -np.sort(-off, axis=-1)[..., :k].mean(-1)  # [T, N]
  return 100.0 * float(np.mean(np.argmax(scores - beta * r, axis=-1) == target))


def task_and_candidate_scores(scorer, chars, v, num_tasks: int, batch_size: int, chunk: int = 50):
  """(scores [T, N], candidate-candidate scores [T, N, N], target [T]) of the validation tasks (k = 1)."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from siamese_jax import evaluate, oneshot  # pylint: disable=g-import-not-at-top

  ((tasks, _),) = evaluate.nway_tasks(chars, (v.n_way,), (oneshot.WITHIN_ALPHABET,), 1, num_tasks, v.seed)
  table, remap, _ = oneshot.EmbeddedSet(scorer, chars.images, batch_size).embed(tasks.query, tasks.support)
  scores, cand = [], []
  for i in range(0, len(tasks.query), chunk):
    q, s = jnp.asarray(remap(tasks.query[i : i + chunk])), jnp.asarray(remap(tasks.support[i : i + chunk]))
    scores.append(np.asarray(oneshot.task_scores(scorer, table, q, s)))
    sup = table[s[:, :, 0]]  # [t, N, F]
    cand.append(np.asarray(scorer.pair(scorer.params, sup[:, :, None, :], sup[:, None, :, :])))
  return np.concatenate(scores), np.concatenate(cand), tasks.target


def main(_):
  f = flags.FLAGS
  from siamese_jax import augment, oneshot  # pylint: disable=g-import-not-at-top

  variants = [(int(k), float(b)) for k in f.top_k for b in f.betas]
  acc = {v: [] for v in variants}
  for wd in f.workdirs:
    config, _, chars, base = over_seeds.load_validation(wd, f.num_tasks)
    e = config.eval
    copies, strength = e.get("tta_copies", f.tta_copies), e.get("tta_strength", f.tta_strength)
    scorer = oneshot.tta_scorer(base, copies, augment.scaled(config.augment, strength), e.get("tta_seed", 0))
    scores, cand, target = task_and_candidate_scores(scorer, chars, config.validation, f.num_tasks, e.batch_size)
    for k, b in variants:
      acc[(k, b)].append(centered_accuracy(scores, cand, target, k, b))
      print(f"{wd}  TTA {copies}@{strength:g}  top-{k} beta {b:g}: val {acc[(k, b)][-1]:.2f}", flush=True)
  ref = {(k, b): acc.get((k, 0.0), acc[variants[0]]) for k, b in variants}  # beta 0 of the same k
  print("\n" + over_seeds.gain_table(["top-k", "beta"], acc, ref, f.workdirs))


if __name__ == "__main__":  # flags defined here, so that tests can import the functions above
  flags.DEFINE_list("workdirs", None, "Trained workdirs, one per seed.", required=True)
  flags.DEFINE_list("top_k", ["1", "3", "19"], "How many of a candidate's best scores against the others r_c averages.")
  flags.DEFINE_list("betas", ["0", "0.25", "0.5", "0.75", "1"], "Weights of r_c (0: no centering).")
  flags.DEFINE_integer("num_tasks", 2000, "Validation tasks.")
  flags.DEFINE_integer("tta_copies", 16, "TTA copies for workdirs whose config predates eval.tta_copies.")
  flags.DEFINE_float("tta_strength", 2.0, "TTA strength for those workdirs.")
  app.run(main)
