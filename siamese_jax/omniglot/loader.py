"""Loads prepared Omniglot splits into NumPy arrays grouped by character and drawer."""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import os

import numpy as np

from siamese_jax.omniglot.constants import ALPHABETS, SPLIT_ZIPS, OmniglotDataError

MANUAL_DIR_ENV = "OMNIGLOT_DIR"


def resolve_manual_dir(manual_dir: str | None) -> str | None:
  """The manual dir from the argument, else $OMNIGLOT_DIR, else None (download)."""
  manual_dir = manual_dir or os.environ.get(MANUAL_DIR_ENV) or None
  if manual_dir is None:
    return None
  manual_dir = os.path.abspath(os.path.expanduser(manual_dir))
  if not os.path.isdir(manual_dir):
    raise OmniglotDataError(f"manual dir {manual_dir} does not exist")
  missing = [f for f in SPLIT_ZIPS.values() if not os.path.exists(os.path.join(manual_dir, f))]
  if missing:
    raise OmniglotDataError(
      f"manual dir {manual_dir} lacks {', '.join(missing)}; it must hold " + ", ".join(SPLIT_ZIPS.values())
    )
  return manual_dir


def prepare(data_dir: str | None = None, manual_dir: str | None = None):
  """Returns the `OmniglotDrawers` builder, preparing it into data_dir if needed.

  A prepared data set is reused as it is: the zips are read only the first time.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  from siamese_jax.omniglot.builder import OmniglotDrawers  # pylint: disable=g-import-not-at-top

  builder = OmniglotDrawers(data_dir=os.path.expanduser(data_dir) if data_dir else None)
  if builder.is_prepared():
    return builder
  manual_dir = resolve_manual_dir(manual_dir)
  try:
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  except OmniglotDataError:
    raise
  except Exception as e:  # noqa: BLE001 - tfds may wrap our error.
    cause = e
    while cause is not None and not isinstance(cause, OmniglotDataError):
      cause = cause.__cause__ or cause.__context__
    if cause is not None:
      raise cause from None
    raise
  return builder


def load_split(split: str, data_dir: str | None = None, manual_dir: str | None = None) -> dict:
  """Loads a whole split as NumPy arrays.

  Returns a dict with `image` uint8 [N, 105, 105, 1] (0 ink, 255 paper), `alphabet`
  int [N] (index into `ALPHABETS`), `character` int [N] (within the alphabet),
  `label` int [N] (global character number, 0-based) and `drawer` int [N] (1..20).
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  if split not in SPLIT_ZIPS:
    raise OmniglotDataError(f"unknown split {split!r}; choose from {sorted(SPLIT_ZIPS)}")
  builder = prepare(data_dir, manual_dir)
  try:
    ds = builder.as_dataset(split=split, batch_size=-1, shuffle_files=False)
    arrays = tfds.as_numpy(ds)
    return {k: np.asarray(arrays[k]) for k in ("image", "alphabet", "character", "label", "drawer")}
  except Exception as e:  # noqa: BLE001 - TensorFlow's DataLossError, NotFoundError, ... for a damaged shard
    lines = [line for line in str(e).splitlines() if line.strip()]
    raise OmniglotDataError(
      f"the prepared data in {builder.data_dir} cannot be read ({type(e).__name__}: {lines[0][:160] if lines else ''});"
      f" delete {builder.data_dir} and run again to prepare it anew from the zips"
    ) from None


@dataclasses.dataclass(frozen=True)
class CharacterArray:
  """Images of a set of characters by a fixed set of drawers.

  Attributes:
    images: uint8 [C, D, H, W, 1], 0 ink, 255 paper.
    labels: int [C], global character number.
    alphabets: int [C], index into `ALPHABETS`.
    drawers: int [D], drawer numbers (1..20).
    group_names: what `alphabets` index (Omniglot's alphabets, or a folder's groups).
  """

  images: np.ndarray
  labels: np.ndarray
  alphabets: np.ndarray
  drawers: np.ndarray
  group_names: tuple = ALPHABETS

  @property
  def num_characters(self) -> int:
    return self.images.shape[0]

  @property
  def alphabet_names(self) -> list[str]:
    return [self.group_names[i] for i in sorted(set(self.alphabets.tolist()))]


def group_by_character(
  split: dict,
  alphabets: Sequence[str] | None = None,
  drawers: Sequence[int] | None = None,
) -> CharacterArray:
  """Selects alphabets and drawers from a split and groups images as [C, D, ...].

  Raises OmniglotDataError if an alphabet is absent or a character lacks a drawer.
  """
  present = {ALPHABETS[i] for i in np.unique(split["alphabet"])}
  if alphabets is not None:
    unknown = [a for a in alphabets if a not in present]
    if unknown:
      raise OmniglotDataError(f"alphabets not in this split: {unknown}; it has {sorted(present)}")
    keep = np.isin(split["alphabet"], [ALPHABETS.index(a) for a in alphabets])
  else:
    keep = np.ones(len(split["label"]), bool)
  all_drawers = np.unique(split["drawer"])
  drawers = np.asarray(sorted(drawers) if drawers is not None else all_drawers)
  keep &= np.isin(split["drawer"], drawers)
  labels = np.unique(split["label"][keep])
  order = np.lexsort((split["drawer"][keep], split["label"][keep]))
  idx = np.flatnonzero(keep)[order]
  if len(idx) != len(labels) * len(drawers):
    raise OmniglotDataError(
      f"expected {len(labels)} characters x {len(drawers)} drawers ="
      f" {len(labels) * len(drawers)} images, found {len(idx)}"
    )
  images = split["image"][idx].reshape((len(labels), len(drawers)) + split["image"].shape[1:])
  got_drawers = split["drawer"][idx].reshape(len(labels), len(drawers))
  if not (got_drawers == drawers[None]).all():
    raise OmniglotDataError("some characters lack one of the requested drawers")
  alph = split["alphabet"][idx].reshape(len(labels), len(drawers))[:, 0]
  return CharacterArray(images=images, labels=labels, alphabets=alph, drawers=drawers)


def concatenate(parts: Sequence[CharacterArray]) -> CharacterArray:
  """The characters of several CharacterArrays [C_i, D, ...] (same drawers) as one [sum C_i, D, ...]."""
  if any(not np.array_equal(p.drawers, parts[0].drawers) for p in parts):
    raise OmniglotDataError("cannot join characters drawn by different drawers")
  labels = np.concatenate([p.labels for p in parts])
  if len(np.unique(labels)) != len(labels):
    raise OmniglotDataError("the same character appears in two of the sets joined")
  return CharacterArray(
    images=np.concatenate([p.images for p in parts]),
    labels=labels,
    alphabets=np.concatenate([p.alphabets for p in parts]),
    drawers=parts[0].drawers,
    group_names=parts[0].group_names,
  )


def resize_images(images: np.ndarray, size: int, chunk: int = 2048) -> np.ndarray:
  """Resizes uint8 [..., H, W, C] images to [..., size, size, C] (antialiased)."""
  if images.shape[-2] == size:
    return images
  import jax  # pylint: disable=g-import-not-at-top

  lead = images.shape[:-3]
  flat = images.reshape((-1,) + images.shape[-3:])
  out = []
  for i in range(0, len(flat), chunk):
    x = flat[i : i + chunk].astype(np.float32)
    y = jax.image.resize(x, (len(x), size, size, x.shape[-1]), "linear", antialias=True)
    out.append(np.asarray(np.clip(np.round(y), 0, 255), np.uint8))
  return np.concatenate(out).reshape(lead + (size, size, images.shape[-1]))


def load_character_list(
  chosen: dict,
  drawers: Sequence[int] | None = None,
  image_size: int | None = None,
  data_dir: str | None = None,
  manual_dir: str | None = None,
) -> CharacterArray:
  """The characters of a list, {(tfds split, alphabet): character numbers (1-based)} as
  `omniglot.splits.characters` gives, by the given drawers, resized, grouped by character."""
  parts = []
  for split in sorted({s for s, _ in chosen}):
    arrays = load_split(split, data_dir, manual_dir)
    wanted = {(ALPHABETS.index(a), c - 1) for (s, a), numbers in chosen.items() if s == split for c in numbers}
    keep = np.array([(a, c) in wanted for a, c in zip(arrays["alphabet"].tolist(), arrays["character"].tolist())])
    parts.append(group_by_character({k: v[keep] for k, v in arrays.items()}, drawers=drawers))
  chars = concatenate(parts)
  if image_size:
    chars = dataclasses.replace(chars, images=resize_images(chars.images, image_size))
  return chars


def load_characters(
  split: str,
  alphabets: Sequence[str] | None = None,
  drawers: Sequence[int] | None = None,
  image_size: int | None = None,
  data_dir: str | None = None,
  manual_dir: str | None = None,
) -> CharacterArray:
  """Loads a split, keeps the given alphabets and drawers, resizes, groups by character."""
  chars = group_by_character(load_split(split, data_dir, manual_dir), alphabets, drawers)
  if image_size:
    chars = dataclasses.replace(chars, images=resize_images(chars.images, image_size))
  return chars
