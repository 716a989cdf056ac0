"""Every training objective: the clamped binary cross-entropy over pair batches, and the metric
objectives (contrastive, triplet, prototypical) over group batches.

An objective takes (params, batch, encode, **options) where `encode(params, images) -> [N, E]` and
the batch comes from `input_pipeline` (`PAIR_MODES` names each pair mode's default objective);
`OBJECTIVES` is the registry the config check and the train step read.
"""

from collections.abc import Callable
import dataclasses

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


def pair_loss(params, x_a, x_b, labels, encode, head: str = "l1"):
  """Mean clamped BCE of pairs (x_a[i], x_b[i]) [B, H, W, 1] with labels [B], scored by `head`."""
  logits = model.pair_logits(params, encode(params, x_a), encode(params, x_b), head)
  return mean_clamped_bce(logits, labels)


def pairs_objective(params, batch, encode, head: str = "l1"):
  """Objective of an independent-pair batch (`input_pipeline.PairBatch`): mean clamped BCE."""
  return pair_loss(params, batch.x_a, batch.x_b, batch.labels, encode, head)


def all_pairs_objective(params, batch, encode, hard_negatives: float = 0.0, head: str = "l1"):
  """Balanced clamped BCE over every pair i < j of a group batch (`input_pipeline.GroupBatch`):
  the mean over same pairs and the mean over different pairs weigh 1/2 each.

  hard_negatives = beta > 0 weighs the different pairs by softmax(beta * logit) over them (the
  logits held constant) instead of equally: the pairs the model finds most alike count most.
  Pairs of classes made from one character (`batch.bases`, when given: rotated copies of a
  symmetric character can be the same image) are then left out of the different pairs.
  """
  emb = encode(params, batch.x)
  logits = model.all_pair_logits(params, emb, head=head)  # [N, N]
  bce = clamped_bce(logits, _same(batch).astype(jnp.float32))
  pos, neg = _pair_masks(batch)
  if hard_negatives > 0:
    if batch.bases is not None:
      neg = neg & (batch.bases[:, None] != batch.bases[None, :])
    z = jnp.where(neg, hard_negatives * jax.lax.stop_gradient(logits), -jnp.inf)
    neg_term = jnp.sum(jnp.where(neg, jax.nn.softmax(z, axis=None) * bce, 0.0))
  else:
    neg_term = jnp.sum(bce * neg) / jnp.sum(neg)
  return 0.5 * (jnp.sum(bce * pos) / jnp.sum(pos) + neg_term)


def _same(batch) -> jax.Array:
  """[N, N] bool: images i and j of a group batch show one class."""
  return batch.chars[:, None] == batch.chars[None, :]


def _pair_masks(batch) -> tuple[jax.Array, jax.Array]:
  """The same and the different pairs i < j of a group batch, as [N, N] bool masks."""
  n = batch.chars.shape[0]
  upper = jnp.triu(jnp.ones((n, n), bool), k=1)
  same = _same(batch)
  return upper & same, upper & ~same


def contrastive_objective(params, batch, encode, margin: float = 1.0):
  """Contrastive loss (Hadsell, Chopra & LeCun, 2006) over every pair i < j of a group batch:
  d^2 for same pairs, max(0, margin - d)^2 for different ones (d the Euclidean distance of the
  embeddings), the two means weighing 1/2 each."""
  d2 = model.squared_distances(encode(params, batch.x).astype(jnp.float32))
  pos, neg = _pair_masks(batch)
  d = jnp.sqrt(d2 + jnp.where(neg, 1e-12, 1.0)) * neg  # the sqrt's gradient stays finite at d = 0
  far = jnp.maximum(margin - d, 0.0) ** 2
  return 0.5 * (jnp.sum(d2 * pos) / jnp.sum(pos) + jnp.sum(far * neg) / jnp.sum(neg))


def triplet_objective(params, batch, encode, margin: float = 1.0):
  """Triplet loss with a margin over every valid triplet of a group batch: anchor a, positive p (same
  class, p != a), negative n (another class): mean of max(0, d^2(a, p) - d^2(a, n) + margin)."""
  d2 = model.squared_distances(encode(params, batch.x).astype(jnp.float32))
  same = _same(batch)
  positive = same & ~jnp.eye(same.shape[0], dtype=bool)  # [A, P]
  valid = positive[:, :, None] & ~same[:, None, :]  # [A, P, N]
  hinge = jnp.maximum(d2[:, :, None] - d2[:, None, :] + margin, 0.0)
  return jnp.sum(hinge * valid) / jnp.sum(valid)


def prototypical_objective(params, batch, encode, drawers_per_char: int = 4):
  """Prototypical loss (Snell, Swersky & Zemel, 2017) of a group batch of P classes x Q =
  `drawers_per_char` images in class order (as `input_pipeline.group_batch` draws them): the first
  Q // 2 images of each class average to its prototype, the other Q - Q // 2 are classified by
  softmax(-squared distance) over the P prototypes; mean cross-entropy."""
  emb = encode(params, batch.x).astype(jnp.float32)
  q, k = drawers_per_char, drawers_per_char // 2
  emb = emb.reshape(-1, q, emb.shape[-1])  # [P, Q, E]
  protos = emb[:, :k].mean(axis=1)  # [P, E]
  queries = emb[:, k:].reshape(-1, emb.shape[-1])  # [P * (Q - k), E]
  d2 = jnp.sum((queries[:, None, :] - protos[None, :, :]) ** 2, axis=-1)  # [P * (Q - k), P]
  labels = jnp.repeat(jnp.arange(emb.shape[0]), q - k)
  return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(-d2, axis=-1), labels[:, None], axis=-1))


@dataclasses.dataclass(frozen=True)
class Objective:
  """A training objective: `fn(params, batch, encode, **options)`, the pair mode whose batches it
  scores (`input_pipeline.PAIR_MODES`), and the names of the train/model settings it takes."""

  fn: Callable
  pair_mode: str
  options: tuple[str, ...] = ()


OBJECTIVES = {
  "pairs": Objective(pairs_objective, "independent", ("head",)),
  "all_pairs": Objective(all_pairs_objective, "all_pairs", ("hard_negatives", "head")),
  "contrastive": Objective(contrastive_objective, "all_pairs", ("margin",)),
  "triplet": Objective(triplet_objective, "all_pairs", ("margin",)),
  "prototypical": Objective(prototypical_objective, "all_pairs", ("drawers_per_char",)),
}
