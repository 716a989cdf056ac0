"""A folder data set's classes split into train / validation / test, as `CharacterArray`s.

Classes, never images, are split: by seeded fractions of the classes (or of the groups, so that
test groups are unseen), or by explicit lists in a JSON file. Every part keeps the same number of
images per class (the evaluator's tasks index images as [class, image]): `images_per_class`, or the
fewest any class of the part has; larger classes give a seeded subset, smaller ones are left out
(named). A class with a single image has no positive pair and is always left out.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os

from absl import logging
import numpy as np

from siamese_jax.folder import scan
from siamese_jax.omniglot.loader import CharacterArray

PARTS = ("train", "validation", "test")
SPLIT_BY = ("class", "group")
SHOWN = 10  # names listed in one log line before "... and N more"


def _names(items, shown: int = SHOWN) -> str:
  items = list(items)
  more = f" ... and {len(items) - shown} more" if len(items) > shown else ""
  return ", ".join(str(i) for i in items[:shown]) + more


def prepare(
  folder: str, image_size: int, data_dir: str | None = None, strict: bool = False, channels: int = 1
) -> scan.Images:
  """The folder's images at `image_size` (grey, or RGB with `channels=3`), prepared once into the tfds
  data dir (again when it changed): `prepared` of the folder's listing."""
  listing = scan.list_folder(folder)
  return prepared(listing, listing.fingerprint(), image_size, data_dir, strict, channels)


@functools.lru_cache(maxsize=4)
def prepared(
  listing: scan.Listing, fingerprint: str, image_size: int, data_dir: str | None, strict: bool, channels: int
) -> scan.Images:
  """The images of a listed folder whose files have `fingerprint`, prepared once into the tfds data dir.

  Unreadable files are listed in the log and skipped (FolderDataError instead if `strict`);
  byte-identical files in different classes are warned about. The result is kept for the last few
  folder states, so the training, validation and evaluation parts of one run read the data set and
  warn once; a changed folder has another fingerprint and is read (and prepared) again.
  """
  from siamese_jax.folder.builder import FolderImages, read  # pylint: disable=g-import-not-at-top

  kwargs = {"fingerprint": fingerprint, "image_size": image_size, "channels": channels}
  data_dir = os.path.expanduser(data_dir) if data_dir else None
  builder = FolderImages(data_dir=data_dir, **kwargs)
  if not builder.is_prepared():
    logging.info(
      "preparing %d files of %s at %dpx into %s", len(listing.files), listing.root, image_size, builder.data_dir
    )
    images = scan.read_images(listing, image_size, _progress_bar(len(listing.files)), channels)
    builder = FolderImages(data_dir=data_dir, images=images, **kwargs)
    builder.download_and_prepare()
  images = read(builder)
  if images.skipped:
    logging.warning(
      "%d of %d files in %s are not readable images and are left out: %s",
      len(images.skipped), len(listing.files), listing.root, _names(f"{p} ({why})" for p, why in images.skipped),
    )  # fmt: skip
    if strict:
      raise scan.FolderDataError(
        f"{len(images.skipped)} unreadable files in {listing.root} (data.strict): "
        + _names([p for p, _ in images.skipped], 5)
      )
  for a, b in images.duplicates:
    logging.warning("the same file is in two classes: %s and %s", a, b)
  return images


def _progress_bar(total: int):
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top

  bar = tqdm(total=total, desc="reading images", unit="img", mininterval=1.0)

  def update(done: int, total: int):
    bar.update(done - bar.n)
    if done == total:
      bar.close()

  return update


@dataclasses.dataclass(frozen=True)
class Split:
  """Which classes each part holds (`parts[name]`: class names) and the classes left out, with why."""

  parts: dict
  left_out: dict


def split_classes(
  images: scan.Images, fractions=(0.7, 0.15, 0.15), seed: int = 0, by: str = "class", split_file: str | None = None
) -> Split:
  """Splits the classes (or the groups, `by="group"`) of `images` into PARTS by seeded fractions or
  by the lists of a JSON file {"train": [...], "validation": [...], "test": [...]}."""
  if by not in SPLIT_BY:
    raise scan.FolderDataError(f"data.split_by {by!r}: choose from {list(SPLIT_BY)}")
  classes, counts = np.unique(images.cls, return_counts=True)
  left_out = {str(c): "one image only: no positive pair" for c in classes[counts < 2]}
  if left_out:
    logging.warning("%d classes have a single image and are left out: %s", len(left_out), _names(left_out))
  group_of = dict(zip(images.cls.tolist(), images.group.tolist()))
  usable = [str(c) for c in classes[counts >= 2]]
  units = sorted({group_of[c] for c in usable}) if by == "group" else usable
  if split_file:
    assigned = _read_split_file(split_file, units, by)
  else:
    if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) <= 0:
      raise scan.FolderDataError(f"data.class_split must be three fractions (train, validation, test), got {fractions}")
    order = np.random.default_rng(seed).permutation(len(units))
    bounds = np.round(np.cumsum(fractions) / np.sum(fractions) * len(units)).astype(int)
    assigned = {p: [units[i] for i in sorted(chunk)] for p, chunk in zip(PARTS, np.split(order, bounds[:2]))}
  parts = {p: [c for c in usable if (group_of[c] if by == "group" else c) in set(assigned[p])] for p in PARTS}
  return Split(parts, left_out)


def _read_split_file(path: str, units: list[str], by: str) -> dict:
  try:
    with open(os.path.expanduser(path)) as f:
      lists = json.load(f)
  except (OSError, ValueError) as e:
    raise scan.FolderDataError(f"data.split_file {path}: {e}") from None
  if not isinstance(lists, dict) or sorted(lists) != sorted(PARTS):
    raise scan.FolderDataError(f"data.split_file {path} must hold exactly the lists {list(PARTS)}")
  unknown = sorted(set().union(*map(set, lists.values())) - set(units))
  if unknown:
    what = "classes" if by == "class" else "groups"
    raise scan.FolderDataError(
      f"data.split_file {path} names {what} the folder lacks (or with a single image): {_names(unknown)}"
    )
  for i, a in enumerate(PARTS):
    for b in PARTS[i + 1 :]:
      both = sorted(set(lists[a]) & set(lists[b]))
      if both:
        raise scan.FolderDataError(f"data.split_file {path}: {_names(both)} in both {a} and {b}")
  return lists


def characters(
  images: scan.Images, split: Split, part: str, images_per_class: int = 0, seed: int = 0
) -> tuple[CharacterArray, dict]:
  """The classes of one part as a CharacterArray [C, D, S, S, 1] (D images per class; `labels`
  number classes over the whole folder, `alphabets` index `group_names`), and what was left out."""
  number = {c: i for i, c in enumerate(np.unique(images.cls).tolist())}
  group_names = tuple(np.unique(images.group).tolist())
  names = split.parts[part]
  counts = {c: int(n) for c, n in zip(*np.unique(images.cls, return_counts=True))}
  d = images_per_class or min((counts[c] for c in names), default=0)
  small = [c for c in names if counts[c] < d]
  if small:
    logging.warning("%s: %d classes have fewer than %d images and are left out: %s", part, len(small), d, _names(small))
  kept = [c for c in names if counts[c] >= d]
  if not kept:
    raise scan.FolderDataError(f"the {part} part has no class with {max(d, 2)} images or more")
  rng = np.random.default_rng(seed)
  idx = np.stack([np.sort(rng.choice(np.flatnonzero(images.cls == c), d, replace=False)) for c in kept])
  chars = CharacterArray(
    images=images.image[idx],
    labels=np.array([number[c] for c in kept]),
    alphabets=np.array([group_names.index(images.group[i[0]]) for i in idx]),
    drawers=np.arange(1, d + 1),
    group_names=group_names,
  )
  info = {
    "classes": kept,
    "images_per_class": d,
    "images_unused": int(sum(counts[c] for c in kept) - len(kept) * d),
    "left_out": {c: f"fewer than {d} images" for c in small},
  }
  return chars, info
