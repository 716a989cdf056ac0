"""Error analysis of a trained model: the worst confusions on Lake's runs, ROC and calibration.

Pure functions over scores and labels, plus two that score with a loaded model
(`api.Siamese`); `notebooks/errors.ipynb` draws them with `figures`.
"""

from __future__ import annotations

import numpy as np


def roc(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
  """ROC of scores p [P] for binary labels y [P]: (false-positive rates, true-positive rates, AUC).

  One point per distinct score (ties step together), from (0, 0) to (1, 1); the AUC is
  the trapezoid area, i.e. P(score of a positive > score of a negative) + half the ties.
  """
  p, y = np.asarray(p, np.float64), np.asarray(y).astype(bool)
  if y.all() or not y.any():
    raise ValueError("ROC needs both positive and negative labels")
  order = np.argsort(-p, kind="stable")
  p, y = p[order], y[order]
  last = np.r_[np.nonzero(np.diff(p))[0], len(p) - 1]  # the last index of each distinct score
  tpr = np.r_[0.0, np.cumsum(y)[last] / y.sum()]
  fpr = np.r_[0.0, np.cumsum(~y)[last] / (~y).sum()]
  return fpr, tpr, float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> dict:
  """Calibration of probabilities p [P] against labels y [P] in `bins` equal-width bins of p.

  Returns {"mean_p", "observed", "count"} (one entry per non-empty bin) and the expected
  calibration error "ece" (count-weighted mean |observed - mean_p|).
  """
  p, y = np.asarray(p, np.float64), np.asarray(y, np.float64)
  which = np.minimum((p * bins).astype(int), bins - 1)
  count = np.bincount(which, minlength=bins)
  keep = count > 0
  mean_p = np.bincount(which, p, bins)[keep] / count[keep]
  observed = np.bincount(which, y, bins)[keep] / count[keep]
  ece = float(np.sum(count[keep] * np.abs(observed - mean_p)) / len(p))
  return {"mean_p": mean_p, "observed": observed, "count": count[keep], "ece": ece}


def lake_confusions(net, runs, worst: int = 8) -> list[dict]:
  """The `worst` misclassified items of Lake's runs, largest margin first.

  net: an `api.Siamese`; runs: `lake_runs.load_runs`. Each entry: run, item, the query,
  chosen and true candidate images (uint8 [105, 105, 1]), their logits, and the margin
  (chosen - true logit).
  """
  from siamese_jax import model  # pylint: disable=g-import-not-at-top

  out = []
  for r in runs:
    e_test, e_train = net.embed(r.test), net.embed(r.train)  # each image once, as the evaluator
    scores = np.asarray(model.pair_logits(net.params, e_test[:, None, :], e_train[None, :, :], net.config.model.head))
    chosen = np.argmax(scores, axis=1)
    for item in np.nonzero(chosen != r.answer)[0]:
      c, t = int(chosen[item]), int(r.answer[item])
      out.append(
        {
          "run": r.name,
          "item": int(item),
          "query": r.test[item],
          "chosen": r.train[c],
          "true": r.train[t],
          "chosen_score": float(scores[item, c]),
          "true_score": float(scores[item, t]),
          "margin": float(scores[item, c] - scores[item, t]),
        }
      )
  return sorted(out, key=lambda e: -e["margin"])[:worst]


def verification_scores(net, chars, num_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Probabilities [P] and labels [P] of `num_pairs` balanced pairs of `chars` (as the evaluator draws them)."""
  from siamese_jax import evaluate, oneshot  # pylint: disable=g-import-not-at-top

  a, b, y = evaluate.verification_pairs(chars, num_pairs, seed)
  scorer = oneshot.config_scorer(net.params, net.config.model)
  p, _ = evaluate.pair_probabilities(scorer, chars, a, b, net.config.eval.batch_size)
  return p, y
