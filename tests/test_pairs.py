"""Pair sampler: labels agree with characters, distinct drawers, balanced."""

import jax
import jax.numpy as jnp
import numpy as np

from configs import koch
from siamese_jax import batches, pairs


def test_labels_agree_and_same_pairs_use_two_drawers():
  idx = jax.jit(pairs.sample_pair_index, static_argnums=(1, 2, 3))(jax.random.PRNGKey(0), 30, 12, 20000)
  idx = jax.tree_util.tree_map(np.asarray, idx)
  same = idx.label == 1
  assert np.array_equal(same, idx.char_a == idx.char_b)
  assert np.all(idx.drawer_a[same] != idx.drawer_b[same])
  for a in (idx.char_a, idx.char_b):
    assert a.min() == 0 and a.max() == 29
  for d in (idx.drawer_a, idx.drawer_b):
    assert d.min() == 0 and d.max() == 11


def test_balanced_within_statistical_bounds():
  n = 40000
  idx = pairs.sample_pair_index(jax.random.PRNGKey(1), 964, 12, n)
  frac = float(idx.label.mean())
  assert abs(frac - 0.5) < 4 * np.sqrt(0.25 / n)  # 4 sigma.


def test_independent_batch_gathers_images():
  c, d = 5, 4
  # Image value encodes (character, drawer).
  images = (jnp.arange(c)[:, None] * 10 + jnp.arange(d)[None, :]).astype(jnp.uint8)
  images = jnp.broadcast_to(images[:, :, None, None, None], (c, d, 3, 3, 1))
  cfg = koch.get_config("smoke")
  cfg.augment.enabled = False
  cfg.train.fixed_pairs = 0
  cfg.train.batch_size = 500
  x_a, x_b, label = batches.independent_batch(jax.random.PRNGKey(2), {"images": images}, cfg)
  x_a, x_b = np.rint((1 - np.asarray(x_a)) * 255), np.rint((1 - np.asarray(x_b)) * 255)
  ca, cb = np.asarray(x_a[:, 0, 0, 0]) // 10, np.asarray(x_b[:, 0, 0, 0]) // 10
  assert np.array_equal(ca == cb, np.asarray(label) == 1)
  assert not np.any((np.asarray(x_a) == np.asarray(x_b)).all(axis=(1, 2, 3)) & (np.asarray(label) == 1))
