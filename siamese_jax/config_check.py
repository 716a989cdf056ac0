"""Start-up checks of a config: one clear line naming the bad key, before any data or compilation.

Valid names of every choice come from the registry beside its implementation
(`convs.CONV_IMPLS`, `model.INITS`, `optim.OPTIMIZERS`, ...), read here and by the dispatch.
"""

from __future__ import annotations

import math
from typing import Any

import ml_collections

from siamese_jax import defaults
from siamese_jax.omniglot.constants import ALPHABET_SIZES, NUM_DRAWERS, SPLIT_ALPHABETS


class ConfigError(ValueError):
  """A config key has an unknown name or an impossible value."""


def _fail(key: str, msg: str):
  raise ConfigError(f"config.{key}: {msg}")


def _choice(config, key: str, registry) -> None:
  """Fails unless the value at `key` (or each value, for a tuple) names an entry of `registry`."""
  value = _get(config, key)
  bad = [v for v in _as_tuple(value) if v not in registry]
  if bad:
    shown = f"{value!r}" if not isinstance(value, (list, tuple)) else f"unknown {bad}"
    _fail(key, f"{shown}; choose from {list(registry)}")


def _unknown_keys(cfg: dict, ref: dict, prefix: str = "") -> list[str]:
  out = []
  for k, v in cfg.items():
    if k not in ref:
      out.append(prefix + k)
    elif isinstance(v, dict) and isinstance(ref[k], dict):
      out += _unknown_keys(v, ref[k], f"{prefix}{k}.")
  return out


def _as_tuple(v) -> tuple:
  return tuple(v) if isinstance(v, (list, tuple)) else (v,)


def _positive(config, key: str, allow_zero: bool = False):
  v = _get(config, key)
  for x in _as_tuple(v):
    if not isinstance(x, (int, float)) or not math.isfinite(x) or x < 0 or (x == 0 and not allow_zero):
      _fail(key, f"must be a finite number {'>= 0' if allow_zero else '> 0'}, got {v!r}")


def _get(config, key: str) -> Any:
  node = config
  for part in key.split("."):
    node = node[part]
  return node


def _check_alphabets(config, key: str, split_key: str) -> tuple[str, ...]:
  split = _get(config, split_key)
  if split not in SPLIT_ALPHABETS:
    _fail(split_key, f"unknown split {split!r}; choose from {sorted(SPLIT_ALPHABETS)}")
  alphabets = _get(config, key)
  if alphabets is None:
    return SPLIT_ALPHABETS[split]
  bad = [a for a in alphabets if a not in SPLIT_ALPHABETS[split]]
  if bad:
    _fail(key, f"{bad} not in split {split!r}")
  return tuple(alphabets)


def _check_drawers(config, key: str, minimum: int) -> tuple[int, ...]:
  drawers = _get(config, key)
  drawers = tuple(range(1, NUM_DRAWERS + 1)) if drawers is None else tuple(drawers)
  if any(not isinstance(d, int) or not 1 <= d <= NUM_DRAWERS for d in drawers) or len(set(drawers)) != len(drawers):
    _fail(key, f"drawers must be distinct integers in 1..{NUM_DRAWERS}, got {drawers}")
  if len(drawers) < minimum:
    _fail(key, f"needs at least {minimum} drawers, got {len(drawers)}")
  return drawers


def check(config: ml_collections.ConfigDict, num_devices: int = 1) -> None:
  """Raises ConfigError naming the first unknown key or impossible value."""
  unknown = _unknown_keys(config.to_dict(), {**defaults.default_config().to_dict(), "preset": None})
  if unknown:
    raise ConfigError(f"config.{unknown[0]}: unknown key (a typo?)")

  from siamese_jax import input_pipeline  # pylint: disable=g-import-not-at-top

  _choice(config, "data.source", input_pipeline.SOURCES)
  if config.data.source == "folder":
    _check_folder(config)
  if config.data.character_split:
    _check_character_split(config)
  _check_model(config)
  global_batch, batch_key = _check_train(config)
  if global_batch % num_devices:
    _fail(
      batch_key, f"global batch of {global_batch} images or pairs does not divide evenly across {num_devices} devices"
    )
  val_alphabets = _check_validation(config)
  _check_eval(config, val_alphabets)


def _part_sizes(config, part: str) -> tuple[int, int]:
  """(characters, characters of its largest alphabet) in a part of `data.character_split`."""
  from siamese_jax.omniglot import splits  # pylint: disable=g-import-not-at-top

  sizes = [len(c) for c in splits.characters(config.data.character_split, part).values()]
  return sum(sizes), max(sizes)


def _check_character_split(config) -> None:
  """A split by character lists: its name, Omniglot, no alphabet selection, held-out sections naming
  two different parts of it."""
  from siamese_jax.omniglot import splits  # pylint: disable=g-import-not-at-top

  d = config.data
  _choice(config, "data.character_split", splits.SPLITS)
  if d.source != "omniglot":
    _fail("data.character_split", f"lists Omniglot's characters; data.source is {d.source!r}")
  if d.train_alphabets is not None or d.extra_train_alphabets:
    key = "data.train_alphabets" if d.train_alphabets is not None else "data.extra_train_alphabets"
    _fail(key, f"must be unset with data.character_split {d.character_split!r} (its lists say what is trained on)")
  _check_held_out_parts(config, splits.PARTS[1:], "with data.character_split", "its lists say what is held out")


def _check_held_out_parts(config, parts, where: str, why: str) -> None:
  """The validation and eval sections of a split into parts: each names one of `parts`, not the same
  one, and no alphabets."""
  for key in ("validation", "eval"):
    section = config[key]
    if key == "validation" and not section.enabled:
      continue
    if section.split not in parts:
      _fail(f"{key}.split", f"{section.split!r}: {where}, choose the part {list(parts)}")
    if section.alphabets is not None:
      _fail(f"{key}.alphabets", f"must be None {where} ({why})")
  if config.validation.enabled and config.validation.split == config.eval.split:
    _fail("validation.split", f"is eval.split ({config.eval.split!r}); choose on one part, test on the other")


def _check_folder(config) -> None:
  """A folder source: its folder and split keys, and held-out sections that name a part of it.
  What depends on the folder's content (classes per part, images per class) is checked on loading."""
  from siamese_jax.folder import loader  # pylint: disable=g-import-not-at-top

  d = config.data
  if not d.dir:
    _fail("data.dir", "data.source 'folder' needs a folder: --config.data.dir=DIR")
  _choice(config, "data.split_by", loader.SPLIT_BY)
  fractions = tuple(d.class_split)
  _positive(config, "data.class_split", allow_zero=True)
  if len(fractions) != 3 or not sum(fractions) > 0:
    _fail("data.class_split", f"must be three fractions (train, validation, test) with a positive sum, got {fractions}")
  if not isinstance(d.images_per_class, int) or d.images_per_class < 0 or d.images_per_class == 1:
    _fail(
      "data.images_per_class", f"must be 0 (the fewest of each part) or an integer >= 2, got {d.images_per_class!r}"
    )
  _check_held_out_parts(
    config, loader.PARTS[1:], "with a folder", "its parts come from data.class_split or data.split_file"
  )


# The registries are imported inside the section checks: `unknown_override` runs before jax is set up.


def _check_model(config) -> None:
  from siamese_jax import convs, model  # pylint: disable=g-import-not-at-top

  m = config.model
  if len(m.features) != len(m.kernel_sizes):
    _fail("model.kernel_sizes", f"has {len(m.kernel_sizes)} entries, model.features {len(m.features)}")
  for key in ("model.image_size", "model.features", "model.kernel_sizes", "model.embed_dim"):
    _positive(config, key)
  try:
    model.feature_size(m.image_size, m.kernel_sizes)
  except ValueError as e:
    _fail("model.image_size", str(e))
  _choice(config, "model.init", model.INITS)
  if m.channels not in (1, 3):
    _fail("model.channels", f"must be 1 (grey) or 3 (RGB), got {m.channels!r}")
  if m.channels == 3 and config.data.source == "omniglot":
    _fail("model.channels", "Omniglot is grey: 3 (RGB) is for data.source 'folder'")
  if m.norm_groups < 0 or any(f % m.norm_groups for f in m.features if m.norm_groups):
    _fail("model.norm_groups", f"must be 0 or divide every conv width {tuple(m.features)}, got {m.norm_groups}")
  _choice(config, "model.dtype", model.DTYPES)
  _choice(config, "model.conv_impl", ("auto", *convs.CONV_IMPLS))
  _choice(config, "model.head", model.HEADS)


def _check_train(config) -> tuple[int, str]:
  """Checks the train and data sections; returns (global batch, the key that sets it)."""
  from siamese_jax import input_pipeline, optim  # pylint: disable=g-import-not-at-top

  m, t = config.model, config.train
  _choice(config, "train.optimizer", optim.OPTIMIZERS)
  _choice(config, "train.lr_schedule", optim.LR_SCHEDULES)
  _choice(config, "train.pair_mode", input_pipeline.PAIR_MODES)
  from siamese_jax import losses  # pylint: disable=g-import-not-at-top

  if t.objective:
    _choice(config, "train.objective", losses.OBJECTIVES)
    want = losses.OBJECTIVES[t.objective].pair_mode
    if want != t.pair_mode:
      _fail("train.objective", f"{t.objective!r} scores train.pair_mode={want!r} batches, not {t.pair_mode!r}")
  _positive(config, "train.margin")
  for key in (
    "train.learning_rate",
    "train.batch_size",
    "train.max_epochs",
    "train.log_every",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.lr_decay",
  ):
    _positive(config, key)
  for key in (
    "train.l2",
    "train.fixed_pairs",
    "train.steps_per_epoch",
    "train.patience",
    "train.distortions_per_pair",
    "train.momentum_epochs",
    "train.weight_decay",
  ):
    _positive(config, key, allow_zero=True)
  for key in ("train.momentum", "train.momentum_start", "train.b1", "train.b2"):
    if any(not 0 <= x < 1 for x in _as_tuple(_get(config, key))):
      _fail(key, f"must be in [0, 1), got {_get(config, key)!r}")
  layers = len(m.features) + 2  # convs, embed, head (lr_scales: koch_sgd only)
  if t.optimizer == "koch_sgd" and t.lr_scales and len(t.lr_scales) != layers:
    _fail("train.lr_scales", f"needs one value per layer ({layers}: conv..., embed, head), got {len(t.lr_scales)}")
  if t.optimizer != "adam" and t.weight_decay:
    _fail("train.weight_decay", f"is Adam's decoupled decay; {t.optimizer} takes train.l2, got {t.weight_decay}")
  if t.lr_scales:
    _positive(config, "train.lr_scales")
  if t.lr_decay > 1:
    _fail("train.lr_decay", f"must be in (0, 1], got {t.lr_decay}")
  if not t.steps_per_epoch and not t.fixed_pairs:
    _fail("train.steps_per_epoch", "0 (derived) needs train.fixed_pairs > 0")

  # Data and the training split (a folder's sizes are known once it is read).
  num_chars, num_drawers = 10**9, 10**9
  if config.data.character_split:
    num_drawers = len(_check_drawers(config, "data.train_drawers", 2))
    num_chars = _part_sizes(config, "train")[0]
  elif config.data.source == "omniglot":
    train_alphabets = _check_alphabets(config, "data.train_alphabets", "data.train_split")
    extra = tuple(config.data.extra_train_alphabets)
    bad = [a for a in extra if a not in SPLIT_ALPHABETS[input_pipeline.EXTRA_TRAIN_SPLIT]]
    if bad:
      _fail("data.extra_train_alphabets", f"{bad} not in split {input_pipeline.EXTRA_TRAIN_SPLIT!r}")
    num_drawers = len(_check_drawers(config, "data.train_drawers", 2))
    num_chars = sum(ALPHABET_SIZES[a] for a in train_alphabets + extra)
  _positive(config, "train.hard_negatives", allow_zero=True)
  if t.pair_mode == "all_pairs":
    if t.chars_per_batch < 2 or t.chars_per_batch > num_chars:
      _fail("train.chars_per_batch", f"must be in 2..number of training characters, got {t.chars_per_batch}")
    if not 2 <= t.drawers_per_char <= num_drawers:
      _fail("train.drawers_per_char", f"must be in 2..{num_drawers} (training drawers), got {t.drawers_per_char}")
    if not 0 <= t.chars_per_alphabet <= t.chars_per_batch:
      _fail(
        "train.chars_per_alphabet",
        f"must be in 0..train.chars_per_batch ({t.chars_per_batch}), got {t.chars_per_alphabet}",
      )
    global_batch, batch_key = t.chars_per_batch * t.drawers_per_char, "train.chars_per_batch"
  elif t.hard_negatives:
    _fail("train.hard_negatives", "weighs the different pairs of train.pair_mode=all_pairs only")
  if t.hard_negatives and t.objective not in ("", "all_pairs"):
    _fail("train.hard_negatives", f"weighs the clamped BCE's different pairs; train.objective is {t.objective!r}")
  else:
    global_batch, batch_key = t.batch_size, "train.batch_size"
  return global_batch, batch_key


def _check_validation(config) -> tuple[str, ...]:
  """Checks the validation section; returns its alphabets (empty when validation is off)."""
  from siamese_jax import selection  # pylint: disable=g-import-not-at-top

  v = config.validation
  val_alphabets = ()
  if v.enabled:
    _choice(config, "validation.protocol", selection.PROTOCOLS)
    largest = 10**9  # a folder's classes are counted once it is read
    if config.data.character_split:
      _check_drawers(config, "validation.drawers", 2)
      largest = _part_sizes(config, v.split)[1]
    elif config.data.source == "omniglot":
      val_alphabets = _check_alphabets(config, "validation.alphabets", "validation.split")
      _check_drawers(config, "validation.drawers", 2)
      largest = max(ALPHABET_SIZES[a] for a in val_alphabets)
    if not 2 <= v.n_way <= largest:
      _fail(
        "validation.n_way",
        f"{v.n_way}-way within-alphabet tasks need an alphabet of that many"
        f" characters; the largest validation alphabet has {largest}",
      )
    _positive(config, "validation.num_tasks")
    _positive(config, "validation.lake_runs")
    _positive(config, "validation.verification_pairs")
    if v.protocol == "lake_runs" and largest < 20:
      _fail("validation.alphabets", f"Lake-format runs need an alphabet of 20 characters; the largest has {largest}")
  return val_alphabets


def _check_eval(config, val_alphabets) -> None:
  from siamese_jax import evaluate, input_pipeline, oneshot  # pylint: disable=g-import-not-at-top

  e, v = config.eval, config.validation
  total, num_drawers = 10**9, 10**9  # a folder's classes and images per class are checked once it is read
  if config.data.character_split:
    num_drawers = len(_check_drawers(config, "eval.drawers", 2))
    total = _part_sizes(config, e.split)[0]
  elif config.data.source == "omniglot":
    train_alphabets = _check_alphabets(config, "data.train_alphabets", "data.train_split")
    extra = tuple(config.data.extra_train_alphabets)
    eval_alphabets = _check_alphabets(config, "eval.alphabets", "eval.split")
    held_out = [("eval.alphabets", e.split, eval_alphabets)]
    if v.enabled:
      _check_clean_split(v.split, val_alphabets, e.split, eval_alphabets)
      held_out.insert(0, ("validation.alphabets", v.split, val_alphabets))
    _check_unseen((config.data.train_split, train_alphabets), (input_pipeline.EXTRA_TRAIN_SPLIT, extra), held_out)
    num_drawers = len(_check_drawers(config, "eval.drawers", 2))
    total = sum(ALPHABET_SIZES[a] for a in eval_alphabets)
  for n in e.ways:
    if not 2 <= n <= total:
      _fail("eval.ways", f"N={n} needs 2 <= N <= {total} (characters in the evaluation set)")
  _choice(config, "eval.protocols", oneshot.PROTOCOLS)
  for k in _as_tuple(e.shots):
    if not isinstance(k, int) or not 1 <= k < num_drawers:
      _fail("eval.shots", f"{k}-shot tasks need {k + 1} drawers, eval has {num_drawers}")
  _choice(config, "eval.baselines", evaluate.BASELINES)
  if e.episodes:
    _positive(config, "eval.episodes")
    _positive(config, "eval.episode_queries")
    for n in e.episode_ways:
      if not 2 <= n <= total:
        _fail("eval.episode_ways", f"N={n} needs 2 <= N <= {total} (classes in the evaluation set)")
    for k in e.episode_shots:
      if not 1 <= k or k + e.episode_queries > num_drawers:
        _fail(
          "eval.episode_shots",
          f"{k}-shot episodes with {e.episode_queries} queries per class need {k + e.episode_queries} drawers,"
          f" eval has {num_drawers}",
        )
  for key in ("eval.num_tasks", "eval.verification_pairs", "eval.batch_size", "eval.matlab_verification"):
    _positive(config, key)
  if not isinstance(e.tta_copies, int) or e.tta_copies < 1:
    _fail("eval.tta_copies", f"must be an integer >= 1 (1: no test-time augmentation), got {e.tta_copies!r}")
  _positive(config, "eval.tta_strength", allow_zero=True)
  if e.tta_strength * (1 - config.augment.scale_min) >= 1:
    _fail("eval.tta_strength", f"{e.tta_strength} scales augment.scale_min ({config.augment.scale_min}) to <= 0")
  if len(e.matlab_verification) != 2:
    _fail("eval.matlab_verification", f"must be (batches, pairs), got {e.matlab_verification}")


def _shared(split_a: str, alphabets_a, split_b: str, alphabets_b) -> list[str]:
  """The alphabets, sorted, that two selections (a split and alphabets of it) have in common."""
  return sorted(set(alphabets_a) & set(alphabets_b)) if split_a == split_b else []


def _check_clean_split(val_split: str, val_alphabets, eval_split: str, eval_alphabets) -> None:
  """Refuses validation alphabets that are also test alphabets or alphabets of Lake's 20 runs:
  every choice made on validation would then be made on the test set."""
  shared = _shared(val_split, val_alphabets, eval_split, eval_alphabets)
  if shared:
    _fail("validation.alphabets", f"{shared} are also test alphabets (eval.alphabets); validate on other alphabets")
  lake = _shared(val_split, val_alphabets, "evaluation", defaults.TEST_ALPHABETS)
  if lake:
    _fail(
      "validation.alphabets",
      f"{lake} are alphabets of Lake's 20 official runs; validate on others (defaults.VALIDATION_ALPHABETS)",
    )


def _check_unseen(train: tuple, extra: tuple, held_out: list) -> None:
  """Refuses training alphabets (`train`, `extra`: (split, alphabets) each) that are also validation
  or test alphabets (`held_out`: (key, split, alphabets) each) or alphabets of Lake's 20 runs."""
  for where, split, alphabets in [*held_out, ("Lake's 20 official runs", "evaluation", defaults.TEST_ALPHABETS)]:
    shared = sorted({*_shared(*train, split, alphabets), *_shared(*extra, split, alphabets)})
    if shared:
      key = "data.extra_train_alphabets" if set(shared) <= set(extra[1]) else "data.train_alphabets"
      _fail(key, f"{shared} are also alphabets of {where}; train on other alphabets")


def unknown_override(argv: list[str]) -> str | None:
  """The first `--config.a.b=...` command-line override whose key the defaults lack, or None."""
  ref = defaults.default_config().to_dict()
  for arg in argv:
    if not arg.startswith("--config."):
      continue
    path = arg[len("--config.") :].split("=", 1)[0].split(".")
    node = ref
    for part in path:
      if not isinstance(node, dict) or part not in node:
        return ".".join(path)
      node = node[part]
  return None
