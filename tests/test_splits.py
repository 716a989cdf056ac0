"""Splits by character lists: the Vinyals split's counts, disjoint parts covering the release."""

import pytest

from siamese_jax.defaults import TEST_ALPHABETS
from siamese_jax.omniglot import splits
from siamese_jax.omniglot.constants import NUM_CHARACTERS


def test_vinyals_parts_have_the_published_sizes_and_cover_the_release_once():
  parts = {p: splits.characters("vinyals", p) for p in splits.PARTS}
  assert [splits.count("vinyals", p) for p in splits.PARTS] == [1028, 172, 423]
  assert [4 * splits.count("vinyals", p) for p in splits.PARTS] == [4112, 688, 1692]  # with rotated classes
  seen = [(key, c) for chars in parts.values() for key, cs in chars.items() for c in cs]
  assert len(seen) == len(set(seen)) == NUM_CHARACTERS  # disjoint, and every character somewhere
  # The training part holds characters of Lake's test alphabets: a model trained on it is not scored on his runs.
  trained_lake = {a for (_, a) in parts["train"]} & set(TEST_ALPHABETS)
  assert trained_lake == {"Atlantean", "Ge_ez", "Glagolitic", "Gurmukhi"}
  assert parts["train"][("evaluation", "Gurmukhi")] == tuple(range(1, 42))
  assert parts["test"][("evaluation", "Gurmukhi")] == (42, 43, 44, 45)
  with pytest.raises(ValueError, match="unknown split 'lake'"):
    splits.characters("lake", "train")
