"""Clamped BCE: finite at extreme logits, textbook value on ordinary ones."""

import jax.numpy as jnp
import numpy as np

from siamese_jax import losses


def test_finite_at_extreme_logits():
  logits = jnp.array([100.0, -100.0, 100.0, -100.0])
  labels = jnp.array([0.0, 1.0, 1.0, 0.0])
  out = losses.clamped_bce(logits, labels)
  assert bool(jnp.all(jnp.isfinite(out)))
  eps = np.finfo(np.float32).eps
  np.testing.assert_allclose(out[:2], -np.log(eps), rtol=1e-3)
  assert float(out[2]) < 1e-6 and float(out[3]) < 1e-6
  assert bool(jnp.isfinite(losses.mean_clamped_bce(logits, labels)))


def test_matches_textbook_formula():
  rng = np.random.default_rng(0)
  z = rng.normal(size=64).astype(np.float32) * 3
  y = rng.integers(0, 2, 64).astype(np.float32)
  p = 1 / (1 + np.exp(-z.astype(np.float64)))
  want = -(y * np.log(p) + (1 - y) * np.log(1 - p))
  np.testing.assert_allclose(losses.clamped_bce(jnp.array(z), jnp.array(y)), want, rtol=1e-5)
  np.testing.assert_allclose(losses.mean_clamped_bce(jnp.array(z), jnp.array(y)), want.mean(), rtol=1e-5)
