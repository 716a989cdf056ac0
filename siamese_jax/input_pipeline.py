"""The input pipeline: training characters, then pairs sampled and distorted on the device.

Characters arrive as `CharacterArray`s from a source (`SOURCES`: Omniglot through `omniglot.loader`,
or a folder of the user's images through `folder.loader`); the training set may add
each character's rotations as new characters (`augment.with_rotated_classes`). Every
batch is then drawn inside the jitted train step from a key, so no example crosses
the host. Two pair modes (`PAIR_MODES`, the one place that decides):

  independent: B pairs, each same or different with probability 1/2 (fresh every
    step, or drawn from a fixed set of K pairs, each seen as itself or as one of its
    fixed distortions, as in Koch et al.'s Table 1). Batch: `PairBatch`.
  all_pairs: P characters x Q drawers images, each encoded once; the objective scores
    every pair among them. With `chars_per_alphabet` = k > 0 the P characters come k
    at a time from P / k alphabets, so more of the different pairs are within an
    alphabet (a quarter at k = 8 of 32), as in Lake's runs. Batch: `GroupBatch`.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from siamese_jax import augment, model
from siamese_jax.omniglot import loader

# --- characters ----------------------------------------------------------------------------------

EXTRA_TRAIN_SPLIT = "evaluation"  # the split `data.extra_train_alphabets` come from


def _omniglot_training(data: ml_collections.ConfigDict, image_size: int, channels: int) -> loader.CharacterArray:
  del channels  # grey: the config check refuses model.channels 3 for Omniglot
  if data.character_split:
    return _character_list(data, "train", data.train_drawers, image_size)

  def load(split, alphabets):
    return loader.load_characters(
      split,
      alphabets=alphabets,
      drawers=data.train_drawers,
      image_size=image_size,
      data_dir=data.data_dir,
      manual_dir=data.manual_dir,
    )

  chars = load(data.train_split, data.train_alphabets)
  if data.extra_train_alphabets:
    chars = loader.concatenate([chars, load(EXTRA_TRAIN_SPLIT, data.extra_train_alphabets)])
  return chars


def _omniglot_held_out(section, data, image_size: int, channels: int) -> loader.CharacterArray:
  del channels
  if data.character_split:
    return _character_list(data, section.split, section.drawers, image_size)
  return loader.load_characters(
    section.split,
    alphabets=section.alphabets,
    drawers=section.drawers,
    image_size=image_size,
    data_dir=data.data_dir,
    manual_dir=data.manual_dir,
  )


def _character_list(data, part: str, drawers, image_size: int) -> loader.CharacterArray:
  """One part ("train", "validation", "test") of the named character split `data.character_split`."""
  from siamese_jax.omniglot import splits  # pylint: disable=g-import-not-at-top

  chosen = splits.characters(data.character_split, part)
  return loader.load_character_list(chosen, drawers, image_size, data.data_dir, data.manual_dir)


def _folder_part(data: ml_collections.ConfigDict, part: str, image_size: int, channels: int, images=None):
  """One part of a folder data set: (CharacterArray, what `folder.loader.characters` reports)."""
  from siamese_jax.folder import loader as folder_loader  # pylint: disable=g-import-not-at-top

  if images is None:
    images = folder_loader.prepare(data.dir, image_size, data.data_dir, data.strict, channels)
  split = folder_loader.split_classes(images, data.class_split, data.split_seed, data.split_by, data.split_file)
  chars, info = folder_loader.characters(images, split, part, data.images_per_class, data.split_seed)
  return chars, {**info, "left_out": {**split.left_out, **info["left_out"]}}


def _folder_held_out(section, data, image_size: int, channels: int) -> loader.CharacterArray:
  chars, _ = _folder_part(data, section.split, image_size, channels)
  _check_folder_part(section, chars)
  return chars


def _check_folder_part(section, chars: loader.CharacterArray) -> None:
  """FolderDataError naming the key when a part has too few classes or images for the tasks asked."""
  from siamese_jax import oneshot  # pylint: disable=g-import-not-at-top
  from siamese_jax.folder import FolderDataError  # pylint: disable=g-import-not-at-top

  c, d = chars.num_characters, len(chars.drawers)
  largest = int(np.bincount(chars.alphabets).max())
  needs = []  # (key, classes, images per class, in one group)
  if "n_way" in section:  # the validation section
    within = section.protocol == "within_alphabet"
    needs.append(("validation.n_way", 20 if section.protocol == "lake_runs" else section.n_way, 2, within))
  else:
    needs.append(("eval.ways", max(section.ways), max(oneshot.shot_counts(section.shots)) + 1, False))
    if section.episodes:
      shots = max(section.episode_shots) + section.episode_queries
      needs.append(("eval.episode_ways", max(section.episode_ways), shots, False))
  for key, classes, images, in_group in needs:
    have = largest if in_group else c
    where = f"the {section.split} part's largest group" if in_group else f"the {section.split} part"
    if classes > have:
      raise FolderDataError(f"config.{key}: {classes}-way tasks need {classes} classes; {where} has {have}")
    if images > d:
      raise FolderDataError(
        f"config.{key}: its tasks need {images} images per class; the {section.split} part keeps {d}"
        " (data.images_per_class, or the fewest any class has)"
      )


def _folder_training(data: ml_collections.ConfigDict, image_size: int, channels: int) -> loader.CharacterArray:
  return _folder_part(data, "train", image_size, channels)[0]


@dataclasses.dataclass(frozen=True)
class Source:
  """Where characters come from: `training(data, image_size, channels)` and `held_out(section, data,
  image_size, channels)` (a `validation` or `eval` section), each -> CharacterArray [C, D, S, S, channels]."""

  training: Callable[..., loader.CharacterArray]
  held_out: Callable[..., loader.CharacterArray]


SOURCES = {
  "omniglot": Source(_omniglot_training, _omniglot_held_out),
  "folder": Source(_folder_training, _folder_held_out),
}


def training_characters(data: ml_collections.ConfigDict, image_size: int, class_rotations: bool, channels: int = 1):
  """The training characters at the model's input size (Omniglot: `data.train_split`'s alphabets, then
  `data.extra_train_alphabets` of the evaluation split; a folder: its train part), with their rotations
  as new characters if asked."""
  chars = SOURCES[data.source].training(data, image_size, channels)
  return augment.with_rotated_classes(chars) if class_rotations else chars


def held_out_characters(
  section: ml_collections.ConfigDict, data: ml_collections.ConfigDict, image_size: int, channels: int = 1
) -> loader.CharacterArray:
  """The characters a `validation` or `eval` section names (Omniglot: its split, alphabets, drawers; a
  folder: the part `section.split`) at the input size."""
  return SOURCES[data.source].held_out(section, data, image_size, channels)


def data_report(data: ml_collections.ConfigDict, image_size: int, channels: int = 1) -> dict | None:
  """For a folder: its parts (classes, images per class, images unused), the classes left out and the
  files skipped, as written into the workdir (`data.json`); None for Omniglot."""
  if data.source != "folder":
    return None
  from siamese_jax.folder import loader as folder_loader  # pylint: disable=g-import-not-at-top
  from siamese_jax.folder import scan  # pylint: disable=g-import-not-at-top

  listing = scan.list_folder(data.dir)
  fingerprint = listing.fingerprint()
  images = folder_loader.prepared(listing, fingerprint, image_size, data.data_dir, data.strict, channels)
  parts = {part: _folder_part(data, part, image_size, channels, images)[1] for part in folder_loader.PARTS}
  return {
    "dir": listing.root,
    "layout": listing.layout,
    "fingerprint": fingerprint,
    "files": len(listing.files),
    "parts": {p: {k: v for k, v in info.items() if k != "left_out"} for p, info in parts.items()},
    "left_out_classes": {c: why for info in parts.values() for c, why in info["left_out"].items()},
    "skipped_files": [list(x) for x in images.skipped],
    "duplicates": [list(x) for x in images.duplicates],
  }


def base_characters(chars) -> np.ndarray:
  """The character each class of a CharacterArray [C] was made from: its rotated copies
  share it (a symmetric character's copies can be the same image)."""
  return np.asarray(chars.labels) % augment.ROTATED_LABEL_OFFSET


def character_groups(chars) -> np.ndarray:
  """Alphabet of each character of a CharacterArray [C]; rotated copies (see
  `augment.with_rotated_classes`) form alphabets of their own."""
  variant = np.asarray(chars.labels) // augment.ROTATED_LABEL_OFFSET
  return np.asarray(chars.alphabets) * augment.ROTATIONS + variant


# --- pairs ---------------------------------------------------------------------------------------


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
  each by an independent random drawer (getSiameseBatch of the MATLAB example, vectorised).
  """
  ks = jax.random.split(key, 6)
  same = jax.random.bernoulli(ks[0], 0.5, (batch,))
  char_a = jax.random.randint(ks[1], (batch,), 0, num_chars)
  drawer_a = jax.random.randint(ks[2], (batch,), 0, num_drawers)
  char_b = jnp.where(same, char_a, _other(ks[3], char_a, num_chars))
  drawer_b = jnp.where(same, _other(ks[4], drawer_a, num_drawers), jax.random.randint(ks[5], (batch,), 0, num_drawers))
  return PairIndex(char_a, drawer_a, char_b, drawer_b, same.astype(jnp.float32))


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


# --- device data and batches -----------------------------------------------------------------------


def make_data(train: ml_collections.ConfigDict, seed: int, images, groups=None, bases=None) -> dict[str, Any]:
  """Device-side training data: images [C, D, H, W, 1] and, if used, the fixed pairs.

  groups: int [C], the alphabet of each character (see `character_groups`), needed
  when `train.chars_per_alphabet` > 0. bases: int [C], the character each class was made
  from (`base_characters`), kept for `train.hard_negatives` > 0. The fixed pairs and the key of their
  distortions come from `seed` alone, so a resumed run sees the same training set.
  """
  t = train
  c, d = images.shape[:2]
  if t.pair_mode == "all_pairs" and (t.chars_per_batch > c or t.drawers_per_char > d):
    from siamese_jax.folder import FolderDataError  # pylint: disable=g-import-not-at-top; Omniglot's sizes are checked up front

    key, want, have = (
      ("chars_per_batch", t.chars_per_batch, f"{c} classes") if t.chars_per_batch > c
      else ("drawers_per_char", t.drawers_per_char, f"{d} images per class")
    )  # fmt: skip
    raise FolderDataError(f"config.train.{key}: {want} a batch, but the training set has {have}")
  data = {"images": jax.device_put(images)}
  if t.pair_mode == "all_pairs" and t.hard_negatives and bases is not None:
    data["bases"] = jax.device_put(np.asarray(bases, np.int32))
  if t.pair_mode == "all_pairs" and t.chars_per_alphabet:
    if groups is None:
      raise ValueError("train.chars_per_alphabet > 0 needs the characters' alphabets (make_data(..., groups=))")
    groups = np.asarray(groups)
    if groups.shape != images.shape[:1]:
      raise ValueError(f"groups has shape {groups.shape}; expected ({images.shape[0]},), one per character")
    data["groups"] = jax.device_put(np.unique(groups, return_inverse=True)[1].astype(np.int32))  # ids 0..G-1
  if t.pair_mode == "independent" and t.fixed_pairs:
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 7)
    c, d = images.shape[:2]
    data["fixed"] = sample_pair_index(key, c, d, t.fixed_pairs)
    data["distortion_key"] = jax.random.fold_in(key, 1)
  return data


class PairBatch(NamedTuple):
  """An independent-pair batch: x_a, x_b float ink [B, H, W, 1], labels float [B] (1 same)."""

  x_a: jax.Array
  x_b: jax.Array
  labels: jax.Array


class GroupBatch(NamedTuple):
  """An all-pairs batch: x float ink [P*Q, H, W, 1], each image's character [P*Q] and, when the
  data keep them, the character it was made from [P*Q] (`base_characters`)."""

  x: jax.Array
  chars: jax.Array
  bases: jax.Array | None = None


def _fixed_distortions(base_key, ids, choice, ranges, side: int):
  """Distortion `choice` (0 = none, j > 0 = the j-th fixed one) of pair `ids`, image `side`."""
  keys = jax.vmap(lambda i, j: jax.random.fold_in(jax.random.fold_in(base_key, i), 2 * j + side))(ids, choice)
  a = jax.vmap(lambda k: augment.sample(k, (), ranges))(keys)
  ident = augment.identity(ids.shape)
  return jax.tree_util.tree_map(lambda x, i: jnp.where(choice > 0, x, i), a, ident)


def independent_index(key, data, train) -> tuple[PairIndex, jax.Array | None]:
  """The pairs of one independent batch, and their ids in the fixed set (None if fresh)."""
  if "fixed" in data:
    ids = jax.random.randint(key, (train.batch_size,), 0, train.fixed_pairs)
    return jax.tree_util.tree_map(lambda a: a[ids], data["fixed"]), ids
  c, d = data["images"].shape[:2]
  return sample_pair_index(key, c, d, train.batch_size), None


def independent_batch(key, data, train, distort, constrain=lambda x: x) -> PairBatch:
  """One independent batch; `distort` is the augment config (or None); `constrain` shards the batch axis."""
  images = data["images"]
  k_idx, k_choice, k_aug_a, k_aug_b = jax.random.split(key, 4)
  idx, ids = independent_index(k_idx, data, train)
  x_a = constrain(model.preprocess(images[idx.char_a, idx.drawer_a]))
  x_b = constrain(model.preprocess(images[idx.char_b, idx.drawer_b]))
  if distort is not None:
    if "fixed" in data:
      choice = jax.random.randint(k_choice, ids.shape, 0, 1 + train.distortions_per_pair)
      a_a = _fixed_distortions(data["distortion_key"], ids, choice, distort, 0)
      a_b = _fixed_distortions(data["distortion_key"], ids, choice, distort, 1)
    else:
      a_a = augment.sample(k_aug_a, (train.batch_size,), distort)
      a_b = augment.sample(k_aug_b, (train.batch_size,), distort)
    x_a, x_b = augment.warp_batch(x_a, a_a), augment.warp_batch(x_b, a_b)
  return PairBatch(x_a, x_b, idx.label)


def group_batch(key, data, train, distort, constrain=lambda x: x) -> GroupBatch:
  """P characters x Q distinct drawers, as float ink images [P*Q, H, W, 1] and characters [P*Q]."""
  images = data["images"]
  c, d = images.shape[:2]
  k_char, k_drawer, k_aug = jax.random.split(key, 3)
  if "groups" in data:
    chars = grouped_characters(k_char, data["groups"], train.chars_per_batch, train.chars_per_alphabet)
  else:
    chars = jax.random.choice(k_char, c, (train.chars_per_batch,), replace=False)
  drawers = jnp.argsort(jax.random.uniform(k_drawer, (train.chars_per_batch, d)), axis=1)[:, : train.drawers_per_char]
  x = model.preprocess(images[chars[:, None], drawers])
  x = constrain(x.reshape((-1,) + x.shape[2:]))
  if distort is not None:
    x = augment.distort_batch(k_aug, x, distort)
  bases = jnp.repeat(data["bases"][chars], train.drawers_per_char) if "bases" in data else None
  return GroupBatch(x, jnp.repeat(chars, train.drawers_per_char), bases)


@dataclasses.dataclass(frozen=True)
class PairMode:
  """A way to draw training batches, and the objective (a name in `losses.OBJECTIVES`) that scores them
  unless `train.objective` names another of the same pair mode."""

  batch: Callable[..., Any]
  objective: str


PAIR_MODES = {
  "independent": PairMode(independent_batch, "pairs"),
  "all_pairs": PairMode(group_batch, "all_pairs"),
}


def batch_fn(train: ml_collections.ConfigDict, distort: ml_collections.ConfigDict | None, constrain=lambda x: x):
  """(key, data) -> batch for `train.pair_mode`; `distort` is the augment config, None for no distortion."""
  mode = PAIR_MODES[train.pair_mode]
  return lambda key, data: mode.batch(key, data, train, distort, constrain)


def images_per_step(train: ml_collections.ConfigDict) -> int:
  """Images one step encodes: both images of every pair, or the all-pairs batch's images."""
  if train.pair_mode == "all_pairs":
    return train.chars_per_batch * train.drawers_per_char
  return 2 * train.batch_size


def pairs_per_step(train: ml_collections.ConfigDict) -> int:
  """Pairs one step scores: the batch size, or every pair of the all-pairs batch."""
  if train.pair_mode == "all_pairs":
    n = train.chars_per_batch * train.drawers_per_char
    return n * (n - 1) // 2
  return train.batch_size
