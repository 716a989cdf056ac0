"""Data splits given by character lists rather than by alphabet: the Vinyals et al. (2016) split.

The lists are data carried over from the public record of that split: the test set of Vinyals et al.
(2016) and the training / validation division of Snell et al. (2017), as published with the code of
Snell et al. (github.com/jakesnell/prototypical-networks, data/omniglot/splits/vinyals/) and in
torchmeta (github.com/tristandeleu/pytorch-meta, torchmeta/datasets/assets/omniglot/*.json).
1,028 training, 172 validation and 423 test characters; with each character's 90, 180 and 270-degree
rotations as new classes, 4,112 / 688 / 1,692 classes.
"""

from __future__ import annotations

from siamese_jax.omniglot.constants import ALPHABET_SIZES, SPLIT_ALPHABETS

ALL = None  # every character of the alphabet

# part -> {(tfds split, alphabet): character numbers (1-based, as in the release's folder names) or ALL}
_VINYALS_HELD_OUT = {
  "validation": {
    ("background", "Armenian"): ALL,
    ("background", "Bengali"): ALL,
    ("background", "Early_Aramaic"): ALL,
    ("background", "Hebrew"): ALL,
    ("background", "Mkhedruli_(Georgian)"): ALL,
  },
  "test": {
    ("evaluation", "Gurmukhi"): (42, 43, 44, 45),
    ("evaluation", "Kannada"): ALL,
    ("evaluation", "Keble"): ALL,
    ("evaluation", "Malayalam"): ALL,
    ("evaluation", "Manipuri"): ALL,
    ("evaluation", "Mongolian"): ALL,
    ("evaluation", "Old_Church_Slavonic_(Cyrillic)"): ALL,
    ("evaluation", "Oriya"): ALL,
    ("evaluation", "Sylheti"): ALL,
    ("evaluation", "Syriac_(Serto)"): ALL,
    ("evaluation", "Tengwar"): ALL,
    ("evaluation", "Tibetan"): ALL,
    ("evaluation", "ULOG"): ALL,
  },
}
PARTS = ("train", "validation", "test")
SPLITS = ("vinyals",)


def characters(split: str, part: str) -> dict[tuple[str, str], tuple[int, ...]]:
  """{(tfds split, alphabet): character numbers} of a named split's part ("train", "validation",
  "test"); "train" is every character of the release that the other two parts do not hold."""
  if split not in SPLITS:
    raise ValueError(f"unknown split {split!r}; choose from {list(SPLITS)}")
  if part not in PARTS:
    raise ValueError(f"unknown part {part!r} of split {split!r}; choose from {list(PARTS)}")

  def expand(chosen):
    return {key: tuple(range(1, ALPHABET_SIZES[key[1]] + 1)) if c is ALL else tuple(c) for key, c in chosen.items()}

  if part != "train":
    return expand(_VINYALS_HELD_OUT[part])
  held = {k: set(v) for p in ("validation", "test") for k, v in expand(_VINYALS_HELD_OUT[p]).items()}
  out = {}
  for tfds_split in ("background", "evaluation"):
    for alphabet in SPLIT_ALPHABETS[tfds_split]:
      kept = tuple(c for c in range(1, ALPHABET_SIZES[alphabet] + 1) if c not in held.get((tfds_split, alphabet), ()))
      if kept:
        out[(tfds_split, alphabet)] = kept
  return out


def count(split: str, part: str) -> int:
  """Characters in a split's part."""
  return sum(len(c) for c in characters(split, part).values())
