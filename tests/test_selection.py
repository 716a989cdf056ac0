"""Model selection: the validation protocols score a perfect and a blind scorer right; gains paired by seed."""

from conftest import coded_characters, feature_scorer
import ml_collections
import numpy as np
import pytest

from siamese_jax import selection


def validation(**kw) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({"n_way": 5, "num_tasks": 400, "lake_runs": 60, "seed": 1, **kw})


@pytest.mark.parametrize("protocol", sorted(selection.PROTOCOLS))
def test_protocols_give_100_for_a_perfect_scorer_and_chance_for_a_blind_one(protocol):
  chars = coded_characters(alphabet_sizes=(20, 24, 7), drawers=6)
  v = validation()
  perfect = selection.PROTOCOLS[protocol](feature_scorer(0, "perfect"), chars, v, 64)
  assert perfect["val_one_shot"] == 100.0 and perfect["val_one_shot_lo"] <= 100.0 <= perfect["val_one_shot_hi"]
  # Scores by drawer only: every candidate of a task ties, and ties go to no one in particular.
  blind = selection.PROTOCOLS[protocol](feature_scorer(1, "blind"), chars, v, 64)
  chance = 100.0 / (5 if protocol == "within_alphabet" else 20)
  assert blind["val_one_shot"] < chance + 12 and blind["val_one_shot_lo"] <= blind["val_one_shot"]
  again = selection.PROTOCOLS[protocol](feature_scorer(1, "blind"), chars, v, 64)
  assert again == blind  # the same tasks every epoch


def test_protocols_refuse_validation_sets_they_cannot_draw_from():
  small = coded_characters(alphabet_sizes=(4, 7), drawers=4)
  with pytest.raises(selection.ValidationError, match="config.validation.n_way"):
    selection.within_alphabet(feature_scorer(0, "f"), small, validation(n_way=8), 64)
  with pytest.raises(selection.ValidationError, match="20 characters"):
    selection.lake_runs(feature_scorer(0, "f"), small, validation(), 64)


def test_paired_gain_and_verdict():
  assert selection.paired_gain([81.0, 82.0, 83.0], [80.0, 80.0, 82.0]) == pytest.approx(
    (4 / 3, np.std([1, 2, 1], ddof=1))
  )
  assert selection.verdict(0.76, 0.57) == "better"
  assert selection.verdict(-0.9, 0.57) == "worse"
  assert selection.verdict(0.24, 0.76) == "a tie"
  assert selection.verdict(5.0, float("nan")) == "a tie"  # one seed: no spread, no verdict


def test_against_baseline_pairs_by_the_shared_seeds_only():
  from siamese_jax import selection

  c = selection.against_baseline({0: 82.0, 1: 84.0, 5: 50.0}, {0: 80.0, 1: 81.0, 2: 99.0})
  assert c["seeds"] == 2 and c["gain"] == 2.5 and abs(c["spread"] - 0.7071) < 1e-4
  assert c["verdict"] == "better"
  assert selection.against_baseline({0: 1.0}, {1: 1.0}) is None
