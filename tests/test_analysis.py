"""Error analysis: ROC/AUC against the pairwise definition, reliability bins."""

import numpy as np
import pytest

from siamese_jax import analysis


def test_roc_auc_and_reliability():
  rng = np.random.default_rng(0)
  y = rng.integers(0, 2, 500)
  p = np.round(np.clip(0.3 * y + 0.7 * rng.random(500), 0, 1), 2)  # rounded: many ties
  fpr, tpr, auc = analysis.roc(p, y)
  pos, neg = p[y == 1], p[y == 0]
  pairwise = np.mean(pos[:, None] > neg[None]) + 0.5 * np.mean(pos[:, None] == neg[None])
  assert auc == pytest.approx(pairwise, abs=1e-12)
  assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1) and np.all(np.diff(fpr) >= 0)
  assert analysis.roc(np.ones(4), np.array([1, 0, 1, 0]))[2] == 0.5
  with pytest.raises(ValueError, match="both positive and negative"):
    analysis.roc(p, np.ones(500))
  rel = analysis.reliability(np.array([0.05, 0.05, 0.95, 0.95, 0.55]), np.array([0, 0, 1, 0, 1]), bins=10)
  np.testing.assert_allclose(rel["mean_p"], [0.05, 0.55, 0.95])
  np.testing.assert_allclose(rel["observed"], [0.0, 1.0, 0.5])
  assert rel["count"].tolist() == [2, 1, 2] and rel["ece"] == pytest.approx((2 * 0.05 + 0.45 + 2 * 0.45) / 5)
