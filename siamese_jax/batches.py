"""Training batches and their losses, built on the device inside the jitted step.

Two pair modes:
  independent: B pairs, each same or different with probability 1/2 (fresh every
    step, or drawn from a fixed set of K pairs, each seen as itself or as one of
    its fixed distortions, as in Koch et al.'s Table 1).
  all_pairs: P characters x Q drawers images, each encoded once; every pair among
    them is scored, and the loss averages the same and the different pairs
    separately so both classes weigh 1/2. With `train.chars_per_alphabet` = k > 0
    the P characters come k at a time from P / k alphabets, so more of the
    different pairs are within an alphabet (a quarter at k = 8 of 32), as in Lake's runs.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from siamese_jax import augment
from siamese_jax import losses
from siamese_jax import model
from siamese_jax import pairs


def make_data(config: ml_collections.ConfigDict, images, groups=None) -> dict[str, Any]:
  """Device-side training data: images [C, D, H, W, 1] and, if used, the fixed pairs.

  groups: int [C], the alphabet of each character (see `character_groups`), needed
  when `train.chars_per_alphabet` > 0. The fixed pairs and the key of their
  distortions come from `config.seed` alone, so a resumed run sees the same training set.
  """
  data = {"images": jax.device_put(images)}
  t = config.train
  if t.pair_mode == "all_pairs" and t.chars_per_alphabet:
    if groups is None:
      raise ValueError("train.chars_per_alphabet > 0 needs the characters' alphabets (make_data(..., groups=))")
    groups = np.asarray(groups)
    if groups.shape != images.shape[:1]:
      raise ValueError(f"groups has shape {groups.shape}; expected ({images.shape[0]},), one per character")
    data["groups"] = jax.device_put(np.unique(groups, return_inverse=True)[1].astype(np.int32))  # ids 0..G-1
  if t.pair_mode == "independent" and t.fixed_pairs:
    key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 7)
    c, d = images.shape[:2]
    data["fixed"] = pairs.sample_pair_index(key, c, d, t.fixed_pairs)
    data["distortion_key"] = jax.random.fold_in(key, 1)
  return data


def _fixed_distortions(base_key, ids, choice, ranges, side: int):
  """Distortion `choice` (0 = none, j > 0 = the j-th fixed one) of pair `ids`, image `side`."""
  keys = jax.vmap(lambda i, j: jax.random.fold_in(jax.random.fold_in(base_key, i), 2 * j + side))(ids, choice)
  a = jax.vmap(lambda k: augment.sample(k, (), ranges))(keys)
  ident = augment.identity(ids.shape)
  return jax.tree_util.tree_map(lambda x, i: jnp.where(choice > 0, x, i), a, ident)


def independent_index(key, data, train) -> tuple[pairs.PairIndex, jax.Array | None]:
  """The pairs of one independent batch, and their ids in the fixed set (None if fresh)."""
  if "fixed" in data:
    ids = jax.random.randint(key, (train.batch_size,), 0, train.fixed_pairs)
    return jax.tree_util.tree_map(lambda a: a[ids], data["fixed"]), ids
  c, d = data["images"].shape[:2]
  return pairs.sample_pair_index(key, c, d, train.batch_size), None


def independent_batch(key, data, config, constrain=lambda x: x):
  """(x_a, x_b [B, H, W, 1] float ink, labels [B]); `constrain` marks the batch axis for sharding."""
  t, images = config.train, data["images"]
  k_idx, k_choice, k_aug_a, k_aug_b = jax.random.split(key, 4)
  idx, ids = independent_index(k_idx, data, t)
  x_a = constrain(model.preprocess(images[idx.char_a, idx.drawer_a]))
  x_b = constrain(model.preprocess(images[idx.char_b, idx.drawer_b]))
  if config.augment.enabled:
    if "fixed" in data:
      choice = jax.random.randint(k_choice, ids.shape, 0, 1 + t.distortions_per_pair)
      a_a = _fixed_distortions(data["distortion_key"], ids, choice, config.augment, 0)
      a_b = _fixed_distortions(data["distortion_key"], ids, choice, config.augment, 1)
    else:
      a_a = augment.sample(k_aug_a, (t.batch_size,), config.augment)
      a_b = augment.sample(k_aug_b, (t.batch_size,), config.augment)
    x_a, x_b = augment.warp_batch(x_a, a_a), augment.warp_batch(x_b, a_b)
  return x_a, x_b, idx.label


def independent_loss(params, key, data, config, dtype=jnp.float32, constrain=lambda x: x):
  """Mean clamped BCE of an independent pair batch."""
  x_a, x_b, labels = independent_batch(key, data, config, constrain)
  return pair_loss(params, x_a, x_b, labels, dtype, config.model.conv_impl)


def pair_loss(params, x_a, x_b, labels, dtype=jnp.float32, conv_impl: str = "auto"):
  """Mean clamped BCE of pairs (x_a[i], x_b[i]) with labels [B]."""
  emb_a, emb_b = model.encode(params, x_a, dtype, conv_impl), model.encode(params, x_b, dtype, conv_impl)
  return losses.mean_clamped_bce(model.pair_logits(params, emb_a, emb_b), labels)


def character_groups(chars) -> np.ndarray:
  """Alphabet of each character of a CharacterArray [C]; rotated copies (see
  `augment.with_rotated_classes`) form alphabets of their own."""
  rotation = np.asarray(chars.labels) // augment.ROTATED_LABEL_OFFSET
  return np.asarray(chars.alphabets) * augment.ROTATIONS + rotation


def grouped_characters(key, groups: jax.Array, num: int, per_group: int) -> jax.Array:
  """`num` distinct character ids, `per_group` from each of num / per_group random groups.

  groups: int [C] in 0..C-1. Groups are taken in a random order and characters in
  a random order within each; a group with fewer than `per_group` characters gives
  all it has and the next group fills in. Sorting only: no Python loop, jittable.
  """
  groups = jnp.asarray(groups)
  c = groups.shape[0]
  k_group, k_char = jax.random.split(key)
  rank = jax.random.permutation(k_group, c)  # rank of each group id (C is a static bound on G)
  order = jnp.argsort(rank[groups] * c + jax.random.permutation(k_char, c))  # grouped, shuffled within
  sizes = jnp.zeros(c, jnp.int32).at[groups].add(1)
  by_rank = sizes[jnp.argsort(rank)]
  start = (jnp.cumsum(by_rank) - by_rank)[rank]  # first position of each group in `order`
  pos = jnp.arange(c)
  within = pos - start[groups[order]]
  keep_first = jnp.argsort(jnp.where(within < per_group, pos, c + pos))
  return order[keep_first[:num]]


def group_batch(key, data, config, constrain=lambda x: x):
  """P characters x Q distinct drawers: images [P*Q, H, W, 1] (float ink) and characters [P*Q]."""
  t, images = config.train, data["images"]
  c, d = images.shape[:2]
  k_char, k_drawer, k_aug = jax.random.split(key, 3)
  if "groups" in data:
    chars = grouped_characters(k_char, data["groups"], t.chars_per_batch, t.chars_per_alphabet)
  else:
    chars = jax.random.choice(k_char, c, (t.chars_per_batch,), replace=False)
  drawers = jnp.argsort(jax.random.uniform(k_drawer, (t.chars_per_batch, d)), axis=1)[:, : t.drawers_per_char]
  x = model.preprocess(images[chars[:, None], drawers])
  x = constrain(x.reshape((-1,) + x.shape[2:]))
  if config.augment.enabled:
    x = augment.distort_batch(k_aug, x, config.augment)
  return x, jnp.repeat(chars, t.drawers_per_char)


def all_pairs_loss(params, key, data, config, dtype=jnp.float32, constrain=lambda x: x):
  """Balanced clamped BCE over every pair i < j of a group batch."""
  x, chars = group_batch(key, data, config, constrain)
  emb = model.encode(params, x, dtype, config.model.conv_impl)
  logits = model.pair_logits(params, emb[:, None, :], emb[None, :, :])  # [N, N]
  same = (chars[:, None] == chars[None, :]).astype(jnp.float32)
  n = x.shape[0]
  upper = jnp.triu(jnp.ones((n, n), bool), k=1)
  bce = losses.clamped_bce(logits, same)
  pos = upper & (same > 0)
  neg = upper & (same == 0)
  return 0.5 * (jnp.sum(bce * pos) / jnp.sum(pos) + jnp.sum(bce * neg) / jnp.sum(neg))


def make_loss(config: ml_collections.ConfigDict, constrain=lambda x: x):
  """loss(params, key, data) for the configured pair mode; `constrain` shards the batch axis."""
  dtype = jnp.dtype(config.model.dtype)
  fn = {"independent": independent_loss, "all_pairs": all_pairs_loss}.get(config.train.pair_mode)
  if fn is None:
    raise ValueError(f"train.pair_mode={config.train.pair_mode!r}; choose from ['independent', 'all_pairs']")
  return lambda params, key, data: fn(params, key, data, config, dtype, constrain)


def sampled_alphabets(key, data, config, alphabets) -> jax.Array:
  """Alphabet ids of the characters one training batch draws (for split checks)."""
  if config.train.pair_mode == "all_pairs":
    _, chars = group_batch(key, data, config)
    return jnp.asarray(alphabets)[chars]
  idx, _ = independent_index(jax.random.split(key, 4)[0], data, config.train)
  return jnp.concatenate([jnp.asarray(alphabets)[idx.char_a], jnp.asarray(alphabets)[idx.char_b]])
