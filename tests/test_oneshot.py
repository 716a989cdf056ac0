"""One-shot tasks: exact protocol, determinism, embed-once scoring, test-time augmentation."""

from conftest import coded_characters, feature_scorer, run_sweep
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import koch
from siamese_jax import evaluate, model, oneshot


def test_model_scorer_compiles_once_per_process():
  cfg = koch.get_config("smoke").model
  a, b = (model.init(jax.random.PRNGKey(i), cfg) for i in (0, 1))
  spec = model.spec(cfg)
  # Every epoch's validation builds a scorer for new parameters: the jitted embed is shared.
  assert oneshot.model_scorer(a, spec).jitted_embed is oneshot.model_scorer(b, spec).jitted_embed
  assert oneshot.model_scorer(a, spec).jitted_embed is not oneshot.model_scorer(a, spec, conv_impl="xla").jitted_embed
  # bfloat16 shares float32's embed exactly where it computes in float32 (XLA:CPU).
  same = model.compute_dtype("bfloat16")[0] == jnp.float32
  assert (oneshot.model_scorer(a, spec).jitted_embed is oneshot.model_scorer(a, spec, "bfloat16").jitted_embed) == same
  x = jnp.zeros((4, 32, 32, 1), jnp.uint8)
  oneshot.model_scorer(a, spec).jitted_embed(a, x)
  compiled = oneshot.model_scorer(a, spec).jitted_embed._cache_size()
  oneshot.model_scorer(b, spec).jitted_embed(b, x)
  assert oneshot.model_scorer(b, spec).jitted_embed._cache_size() == compiled


def test_tta_scorer_averages_over_fixed_distortions():
  c = koch.get_config("smoke")
  base = oneshot.pixel_scorer()  # embeddings are the images themselves: distortions show
  x = jnp.asarray(np.random.default_rng(0).integers(0, 256, (6, 32, 32, 1)), jnp.uint8)
  e = np.asarray(base.embed(base.params, x))
  assert oneshot.tta_scorer(base, 1, c.augment) is base
  # Identity "distortions": every copy is the image itself, so the scores are the base scorer's.
  still = c.augment.copy_and_resolve_references()
  still.theta, still.shear, still.scale_min, still.scale_max, still.translate = 0.0, 0.0, 1.0, 1.0, 0.0
  t = oneshot.tta_scorer(base, 3, still)
  et = np.asarray(t.embed(t.params, x))
  assert et.shape == (6, 3 * e.shape[1])
  np.testing.assert_allclose(
    t.pair(t.params, et[:3], et[3:]), base.pair(base.params, e[:3], e[3:]), rtol=1e-5, atol=1e-5
  )
  # Real distortions: copy 0 is the undistorted image, the others differ, the score is symmetric.
  c.augment.prob = 1.0
  t = oneshot.tta_scorer(base, 3, c.augment)
  et = np.asarray(t.embed(t.params, x))
  np.testing.assert_allclose(et[:, : e.shape[1]], e, rtol=1e-5, atol=1e-6)
  ab, ba = np.asarray(t.pair(t.params, et[:3], et[3:])), np.asarray(t.pair(t.params, et[3:], et[:3]))
  np.testing.assert_allclose(ab, ba, rtol=1e-5)
  assert not np.allclose(et[:, e.shape[1] : 2 * e.shape[1]], e, atol=1e-2)  # copy 1 is distorted
  assert not np.allclose(ab, base.pair(base.params, e[:3], e[3:]), rtol=1e-3)


def test_within_alphabet_draws_one_alphabet_and_skips_small_ones():
  chars = coded_characters(alphabet_sizes=(5, 8, 12))
  tasks, spec = oneshot.make_tasks(chars.alphabets, 6, "within_alphabet", 6, 1, 500, seed=3)
  alph = chars.alphabets[tasks.chars]
  assert np.all(alph == alph[:, :1])  # All candidates from one alphabet.
  assert set(np.unique(alph[:, 0])) == {1, 2}  # The 5-character alphabet is skipped.
  assert spec.eligible_alphabets == 2 and spec.num_tasks == 500
  # Distinct candidates; the query is a candidate at the target position, other drawer.
  assert all(len(set(row)) == 6 for row in tasks.chars)
  assert np.array_equal(tasks.query // 6, tasks.chars[np.arange(500), tasks.target])
  assert np.all(tasks.query % 6 != tasks.support[np.arange(500), tasks.target, 0] % 6)
  assert len(np.unique(tasks.target)) == 6  # The truth moves around.
  _, spec = oneshot.make_tasks(chars.alphabets, 6, "within_alphabet", 13, 1, 50, seed=3)
  assert spec.num_tasks == 0 and spec.eligible_alphabets == 0
  tasks, _ = oneshot.make_tasks(chars.alphabets, 6, "across_alphabet", 20, 1, 200, seed=3)
  spans = [len(set(row)) for row in chars.alphabets[tasks.chars]]
  assert min(spans) > 1  # 20 of 25 characters cannot come from one alphabet.


def test_k_shot_support_uses_k_distinct_drawers():
  chars = coded_characters()
  tasks, _ = oneshot.make_tasks(chars.alphabets, 6, "across_alphabet", 5, 3, 100, seed=0)
  assert tasks.support.shape == (100, 5, 3)
  d = tasks.support % 6
  assert all(len(set(row)) == 3 for row in d[:, 0, :])
  assert np.all((tasks.query % 6)[:, None] != d[:, 0, :])  # The query drawer is not a support drawer.
  rows, _ = run_sweep(feature_scorer(0, "character"), chars, ways=(5,), shots=3)
  assert all(r["accuracy"] == 100.0 for r in rows.values())


def test_deterministic_for_a_seed():
  chars = coded_characters()
  a = oneshot.make_tasks(chars.alphabets, 6, "within_alphabet", 5, 1, 50, seed=7)[0]
  b = oneshot.make_tasks(chars.alphabets, 6, "within_alphabet", 5, 1, 50, seed=7)[0]
  c = oneshot.make_tasks(chars.alphabets, 6, "within_alphabet", 5, 1, 50, seed=8)[0]
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  assert not np.array_equal(a.chars, c.chars)


def test_each_image_is_embedded_once():
  chars = coded_characters()
  calls = []

  def embed(_, x):
    calls.append(x.shape[0])
    return x[:, 0, 0, :]

  scorer = oneshot.Scorer("count", embed, lambda _, a, b: -jnp.abs(a - b).sum(-1))
  rows, passes = evaluate.nway_accuracy(
    scorer, chars, "evaluation", (2, 5), oneshot.PROTOCOLS, 1, 300, 0, batch_size=10_000
  )
  referenced = sum(r["num_tasks"] * (r["n_way"] + 1) for r in rows)
  assert calls == [passes]  # One encoder call over the unique images.
  assert passes <= chars.images.shape[0] * chars.images.shape[1] < referenced


def test_episodes_have_n_classes_k_support_and_q_queries_each_and_are_deterministic():
  tasks, episode = oneshot.make_episodes(30, 12, n_way=5, shots=3, queries=4, episodes=50, seed=7)
  assert tasks.support.shape == (50 * 5 * 4, 5, 3) and len(tasks.query) == len(episode) == 1000
  again, _ = oneshot.make_episodes(30, 12, n_way=5, shots=3, queries=4, episodes=50, seed=7)
  for a, b in zip(tasks, again):
    np.testing.assert_array_equal(a, b)
  for e in range(50):
    rows = np.flatnonzero(episode == e)
    assert len(np.unique(tasks.chars[rows], axis=0)) == 1  # one set of N classes per episode
    classes = tasks.chars[rows[0]]
    assert len(set(classes.tolist())) == 5
    np.testing.assert_array_equal(np.unique(tasks.support[rows], axis=0)[0], tasks.support[rows[0]])  # shared
    assert np.all(tasks.support[rows[0]] // 12 == classes[:, None])  # K support images of each class
    assert np.bincount(tasks.target[rows], minlength=5).tolist() == [4] * 5  # Q queries per class
    np.testing.assert_array_equal(tasks.query[rows] // 12, classes[tasks.target[rows]])
    for j in range(5):  # K + Q distinct drawers per class
      drawers = np.concatenate([tasks.support[rows[0], j] % 12, tasks.query[rows][tasks.target[rows] == j] % 12])
      assert len(set(drawers.tolist())) == 7
  with pytest.raises(ValueError, match="need 13 drawers"):
    oneshot.make_episodes(30, 12, n_way=5, shots=8, queries=5, episodes=1, seed=0)


def test_episode_accuracy_is_100_for_a_perfect_scorer_and_chance_for_a_blind_one():
  chars = coded_characters(alphabet_sizes=(12, 9, 9), drawers=10)
  perfect, _ = evaluate.episode_accuracy(
    feature_scorer(0, "perfect"), chars, "evaluation", (5, 20), (1, 3), 4, 60, 0, 64
  )
  assert [(r["n_way"], r["shots"]) for r in perfect] == [(5, 1), (5, 3), (20, 1), (20, 3)]
  assert all(r["accuracy"] == 100.0 and r["ci95"] == [100.0, 100.0] for r in perfect)
  constant = oneshot.Scorer("blind", lambda _, x: jnp.zeros((x.shape[0], 1)), lambda _, a, b: -jnp.abs(a - b).sum(-1))
  blind, passes = evaluate.episode_accuracy(constant, chars, "evaluation", (5,), (1,), 4, 60, 0, 64)
  r = blind[0]  # every class scores the same: the first is picked, the truth 1 time in 5
  assert r["accuracy"] == pytest.approx(20.0) and r["total"] == 60 * 5 * 4 and r["num_episodes"] == 60
  assert passes <= chars.images.shape[0] * chars.images.shape[1]  # every image embedded at most once
