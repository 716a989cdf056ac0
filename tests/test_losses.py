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


def test_hard_negatives_weigh_alike_different_pairs_and_skip_copies_of_one_character():
  import jax

  from siamese_jax import input_pipeline, model

  rng = np.random.default_rng(0)
  e = 8
  params = {"head": {"w": jnp.asarray(rng.normal(size=(e, 1)), jnp.float32), "b": jnp.zeros((1,), jnp.float32)}}
  emb = jnp.asarray(rng.normal(size=(6, e)), jnp.float32)
  chars = jnp.array([0, 0, 1, 1, 2, 2])
  batch = input_pipeline.GroupBatch(emb, chars, jnp.array([7, 7, 9, 9, 7, 7]))  # classes 0 and 2: one character
  encode = lambda p, x: x
  z = np.asarray(model.all_pair_logits(params, emb), np.float64)
  bce = np.asarray(
    losses.clamped_bce(jnp.asarray(z, jnp.float32), jnp.asarray(np.equal.outer(chars, chars), jnp.float32))
  )
  i, j = np.triu_indices(6, 1)
  same, base_same = (
    np.asarray(chars)[i] == np.asarray(chars)[j],
    np.asarray(batch.bases)[i] == np.asarray(batch.bases)[j],
  )
  pos = bce[i, j][same].mean()
  plain = losses.all_pairs_objective(params, batch, encode)
  np.testing.assert_allclose(plain, 0.5 * (pos + bce[i, j][~same].mean()), rtol=1e-5)  # every different pair
  neg = ~same & ~base_same
  w = np.exp(0.5 * z[i, j][neg])
  want = 0.5 * (pos + np.sum(w / w.sum() * bce[i, j][neg]))
  np.testing.assert_allclose(losses.all_pairs_objective(params, batch, encode, hard_negatives=0.5), want, rtol=1e-5)
  # the weights are held constant: the gradient is that of the BCE weighted by them
  g = jax.grad(lambda x: losses.all_pairs_objective(params, batch._replace(x=x), encode, 0.5))(emb)
  labels = jnp.asarray(np.equal.outer(chars, chars), jnp.float32)

  def fixed_weights(x):
    b = losses.clamped_bce(model.all_pair_logits(params, x), labels)[i, j]
    return 0.5 * (jnp.mean(b[same]) + jnp.sum(jnp.asarray(w / w.sum(), jnp.float32) * b[neg]))

  np.testing.assert_allclose(g, jax.grad(fixed_weights)(emb), rtol=1e-4, atol=1e-6)
