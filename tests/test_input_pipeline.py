"""Input pipeline: pair sampling (labels, drawers, balance), grouped draws, batches."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import koch
from siamese_jax import input_pipeline as ip


def test_labels_agree_and_same_pairs_use_two_drawers():
  idx = jax.jit(ip.sample_pair_index, static_argnums=(1, 2, 3))(jax.random.PRNGKey(0), 30, 12, 20000)
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
  idx = ip.sample_pair_index(jax.random.PRNGKey(1), 964, 12, n)
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
  x_a, x_b, label = ip.independent_batch(jax.random.PRNGKey(2), {"images": images}, cfg.train, None)
  x_a, x_b = np.rint((1 - np.asarray(x_a)) * 255), np.rint((1 - np.asarray(x_b)) * 255)
  ca, cb = np.asarray(x_a[:, 0, 0, 0]) // 10, np.asarray(x_b[:, 0, 0, 0]) // 10
  assert np.array_equal(ca == cb, np.asarray(label) == 1)
  assert not np.any((np.asarray(x_a) == np.asarray(x_b)).all(axis=(1, 2, 3)) & (np.asarray(label) == 1))


def test_grouped_characters_takes_k_per_alphabet():
  # 7 alphabets of sizes 3..9 (42 characters), ids not contiguous by alphabet.
  sizes = np.arange(3, 10)
  groups = np.random.default_rng(0).permutation(np.repeat(np.arange(7), sizes))
  fn = jax.jit(lambda k: ip.grouped_characters(k, jnp.asarray(groups), 12, 4))
  seen_first = set()
  for i in range(200):
    chars = np.asarray(fn(jax.random.PRNGKey(i)))
    assert len(set(chars.tolist())) == 12 and chars.min() >= 0 and chars.max() < len(groups)
    g = groups[chars]
    counts = np.bincount(g, minlength=7)
    assert counts.max() <= 4
    # Characters come alphabet by alphabet; only an alphabet of 3 gives fewer than 4.
    runs = [g[j] for j in range(12) if j == 0 or g[j] != g[j - 1]]
    assert len(runs) == len(set(runs))
    assert all(counts[a] in (4, sizes[a]) for a in runs[:-1])
    seen_first.add(g[0])
  assert seen_first == set(range(7))  # every alphabet leads some batch


def test_group_batch_draws_within_alphabet_negatives():
  cfg = koch.get_config("smoke")
  cfg.train.pair_mode, cfg.train.chars_per_batch, cfg.train.drawers_per_char = "all_pairs", 8, 2
  cfg.augment.enabled = False
  images = np.zeros((40, 3, 32, 32, 1), np.uint8)
  groups = np.arange(40) // 10  # 4 alphabets of 10
  cfg.train.chars_per_alphabet = 4
  data = ip.make_data(cfg.train, 0, images, groups, bases=np.arange(40) % 7)
  batch = ip.group_batch(jax.random.PRNGKey(0), data, cfg.train, None)
  chars = batch.chars
  assert sorted(np.bincount(groups[np.asarray(chars)], minlength=4).tolist()) == [0, 0, 8, 8]
  assert batch.bases is None  # kept only for train.hard_negatives
  cfg.train.hard_negatives = 0.5
  batch = ip.group_batch(
    jax.random.PRNGKey(0), ip.make_data(cfg.train, 0, images, groups, np.arange(40) % 7), cfg.train, None
  )
  np.testing.assert_array_equal(batch.bases, np.asarray(batch.chars) % 7)
  cfg.train.hard_negatives = 0.0
  cfg.train.chars_per_alphabet = 0  # uniform: 8 characters from 4 alphabets of 10 almost surely span 3+
  spans = [
    len(
      set(
        groups[
          np.asarray(ip.group_batch(jax.random.PRNGKey(i), ip.make_data(cfg.train, 0, images), cfg.train, None).chars)
        ]
      )
    )
    for i in range(20)
  ]
  assert max(spans) >= 3
  cfg.train.chars_per_alphabet = 4
  with pytest.raises(ValueError, match="chars_per_alphabet"):
    ip.make_data(cfg.train, 0, images)
