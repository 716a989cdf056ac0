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


def test_a_vinyals_config_is_checked_and_skips_lakes_runs_with_the_reason():
  from configs import koch
  from siamese_jax import config_check, evaluate

  cfg = koch.get_config("vinyals")
  config_check.check(cfg)
  skipped = evaluate.lake_evaluation([], cfg)["skipped"]
  assert "Atlantean, Ge_ez, Glagolitic, Gurmukhi" in skipped and "would not be a test" in skipped
  for key, value, message in (
    ("data.train_alphabets", ("Latin",), "must be unset with data.character_split"),
    ("eval.split", "evaluation", "choose the part"),
    ("validation.split", "test", "is eval.split"),
    ("data.character_split", "snell", "choose from"),
  ):
    bad = koch.get_config("vinyals")
    section, name = key.split(".")
    bad[section][name] = value
    with pytest.raises(config_check.ConfigError, match=f"config.{key}: .*{message}"):
      config_check.check(bad)


@pytest.mark.slow
def test_vinyals_parts_load_disjoint_with_rotated_held_out_classes(real_omniglot):
  from configs import koch
  from siamese_jax import augment, input_pipeline

  manual, data_dir = real_omniglot
  cfg = koch.get_config("vinyals")
  cfg.data.data_dir, cfg.data.manual_dir = data_dir, manual
  train = input_pipeline.training_characters(cfg.data, 28, class_rotations=False)
  val = input_pipeline.held_out_characters(cfg.validation, cfg.data, 28)
  test = input_pipeline.held_out_characters(cfg.eval, cfg.data, 28)
  assert [c.num_characters for c in (train, val, test)] == [1028, 172, 423]
  assert train.images.shape[1:] == (20, 28, 28, 1)
  labels = [set(c.labels.tolist()) for c in (train, val, test)]
  assert not (labels[0] & labels[1] or labels[0] & labels[2] or labels[1] & labels[2])
  rotated = augment.with_rotated_classes(test)
  assert rotated.num_characters == 1692 and len(set(rotated.labels.tolist())) == 1692
