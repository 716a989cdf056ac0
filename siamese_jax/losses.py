"""Clamped binary cross-entropy, as in the seed MATLAB example."""

import jax
import jax.numpy as jnp

EPS = float(jnp.finfo(jnp.float32).eps)


def clamped_bce(logit: jax.Array, label: jax.Array, eps: float = EPS) -> jax.Array:
  """BCE of one pair: p = clip(sigmoid(logit), eps, 1 - eps); -[y log p + (1-y) log(1-p)].

  Finite for any finite logit (e.g. +-100), where the unclamped form gives inf.
  """
  p = jnp.clip(jax.nn.sigmoid(logit.astype(jnp.float32)), eps, 1.0 - eps)
  return -(label * jnp.log(p) + (1.0 - label) * jnp.log1p(-p))


def mean_clamped_bce(logits: jax.Array, labels: jax.Array, eps: float = EPS) -> jax.Array:
  """Batch mean of `clamped_bce`, computed per pair with vmap; logits, labels [B]."""
  return jnp.mean(jax.vmap(lambda z, y: clamped_bce(z, y, eps))(logits, labels))
