"""Every training objective: the clamped binary cross-entropy and the losses over pair batches.

An objective takes (params, batch, encode) where `encode(params, images) -> [N, E]`
and the batch comes from `input_pipeline` (`PAIR_MODES` names the objective of each
pair mode); `OBJECTIVES` is the registry the config check and the train step read.
"""

import jax
import jax.numpy as jnp

from siamese_jax import model

EPS = float(jnp.finfo(jnp.float32).eps)


def clamped_bce(logit: jax.Array, label: jax.Array, eps: float = EPS) -> jax.Array:
  """BCE of one pair, as in the seed MATLAB example: p = clip(sigmoid(logit), eps, 1 - eps);
  -[y log p + (1-y) log(1-p)]. Finite for any finite logit (e.g. +-100), where the unclamped form gives inf.
  """
  p = jnp.clip(jax.nn.sigmoid(logit.astype(jnp.float32)), eps, 1.0 - eps)
  return -(label * jnp.log(p) + (1.0 - label) * jnp.log1p(-p))


def mean_clamped_bce(logits: jax.Array, labels: jax.Array, eps: float = EPS) -> jax.Array:
  """Batch mean of `clamped_bce`, computed per pair with vmap; logits, labels [B]."""
  return jnp.mean(jax.vmap(lambda z, y: clamped_bce(z, y, eps))(logits, labels))


def pair_loss(params, x_a, x_b, labels, encode):
  """Mean clamped BCE of pairs (x_a[i], x_b[i]) [B, H, W, 1] with labels [B]."""
  logits = model.pair_logits(params, encode(params, x_a), encode(params, x_b))
  return mean_clamped_bce(logits, labels)


def pairs_objective(params, batch, encode):
  """Objective of an independent-pair batch (`input_pipeline.PairBatch`): mean clamped BCE."""
  return pair_loss(params, batch.x_a, batch.x_b, batch.labels, encode)


def all_pairs_objective(params, batch, encode, hard_negatives: float = 0.0):
  """Balanced clamped BCE over every pair i < j of a group batch (`input_pipeline.GroupBatch`):
  the mean over same pairs and the mean over different pairs weigh 1/2 each.

  hard_negatives = beta > 0 weighs the different pairs by softmax(beta * logit) over them (the
  logits held constant) instead of equally: the pairs the model finds most alike count most.
  Pairs of classes made from one character (`batch.bases`, when given: rotated copies of a
  symmetric character can be the same image) are then left out of the different pairs.
  """
  emb = encode(params, batch.x)
  logits = model.all_pair_logits(params, emb)  # [N, N]
  same = (batch.chars[:, None] == batch.chars[None, :]).astype(jnp.float32)
  n = batch.x.shape[0]
  upper = jnp.triu(jnp.ones((n, n), bool), k=1)
  bce = clamped_bce(logits, same)
  pos = upper & (same > 0)
  neg = upper & (same == 0)
  if hard_negatives > 0:
    if batch.bases is not None:
      neg = neg & (batch.bases[:, None] != batch.bases[None, :])
    z = jnp.where(neg, hard_negatives * jax.lax.stop_gradient(logits), -jnp.inf)
    neg_term = jnp.sum(jnp.where(neg, jax.nn.softmax(z, axis=None) * bce, 0.0))
  else:
    neg_term = jnp.sum(bce * neg) / jnp.sum(neg)
  return 0.5 * (jnp.sum(bce * pos) / jnp.sum(pos) + neg_term)


OBJECTIVES = {"pairs": pairs_objective, "all_pairs": all_pairs_objective}
