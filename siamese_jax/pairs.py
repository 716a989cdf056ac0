"""On-device sampling of balanced same/different character pairs (getSiameseBatch, vectorised)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp


class PairIndex(NamedTuple):
  """Indices of a batch of pairs into images [C, D, ...]; each field is int32 [B]."""

  char_a: jax.Array
  drawer_a: jax.Array
  char_b: jax.Array
  drawer_b: jax.Array
  label: jax.Array  # 1 same character, 0 different; float32 [B].


def _other(key, index, n):
  """A uniform draw from range(n) that differs from `index` (elementwise)."""
  return (index + jax.random.randint(key, index.shape, 1, n)) % n


def sample_pair_index(key: jax.Array, num_chars: int, num_drawers: int, batch: int) -> PairIndex:
  """Samples `batch` pairs, each same (label 1) or different (label 0) with probability 1/2.

  Same: one character, two different drawers. Different: two different characters,
  each by an independent random drawer.
  """
  ks = jax.random.split(key, 6)
  same = jax.random.bernoulli(ks[0], 0.5, (batch,))
  char_a = jax.random.randint(ks[1], (batch,), 0, num_chars)
  drawer_a = jax.random.randint(ks[2], (batch,), 0, num_drawers)
  char_b = jnp.where(same, char_a, _other(ks[3], char_a, num_chars))
  drawer_b = jnp.where(
      same, _other(ks[4], drawer_a, num_drawers),
      jax.random.randint(ks[5], (batch,), 0, num_drawers),
  )
  return PairIndex(char_a, drawer_a, char_b, drawer_b, same.astype(jnp.float32))
