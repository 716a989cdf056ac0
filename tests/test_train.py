"""Training: overfitting a fixed batch, on-device batches, presets, split, early stopping, main."""

import json

from conftest import run_main
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import koch
from siamese_jax import augment, input_pipeline, losses, model, train, workdir
from siamese_jax.omniglot.constants import ALPHABET_SIZES, ALPHABETS


def tiny_config(tiny_omniglot, preset="smoke"):
  """A preset on the tiny Omniglot (whose alphabets a character list does not name: chosen by alphabet)."""
  _, data_dir, _ = tiny_omniglot
  cfg = koch.get_config(preset)
  cfg.data.data_dir = data_dir
  cfg.data.character_split = ""
  return cfg


def test_repeated_step_on_fixed_batch_lowers_loss():
  cfg = koch.get_config("smoke")
  params = model.init(jax.random.PRNGKey(0), cfg.model)
  opt = optax.adam(3e-3)
  opt_state = opt.init(params)
  k1, k2 = jax.random.split(jax.random.PRNGKey(1))
  x_a = jax.random.uniform(k1, (16, 32, 32, 1))
  x_b = jnp.where(jnp.arange(16)[:, None, None, None] % 2 == 0, x_a, jax.random.uniform(k2, (16, 32, 32, 1)))
  labels = (jnp.arange(16) % 2 == 0).astype(jnp.float32)

  @jax.jit
  def step(params, opt_state):
    encode = lambda p, x: model.encode(p, x, model.spec(cfg.model))
    loss, grads = jax.value_and_grad(losses.pair_loss)(params, x_a, x_b, labels, encode)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  history = []
  for _ in range(80):
    params, opt_state, loss = step(params, opt_state)
    history.append(float(loss))
  assert history[-1] < 0.5 * history[0], history[::10]


@pytest.mark.parametrize("pair_mode", ["independent", "all_pairs"])
def test_train_step_samples_on_device_and_learns(tiny_omniglot, pair_mode):
  cfg = tiny_config(tiny_omniglot)
  cfg.train.pair_mode = pair_mode
  cfg.train.chars_per_batch = 5
  cfg.augment.enabled = False
  data = train.make_data(cfg, input_pipeline.training_characters(cfg.data, cfg.model.image_size, False))
  state, opt = train.create_train_state(jax.random.PRNGKey(0), cfg)
  step = train.make_train_step(cfg, opt)
  losses = []
  for _ in range(150):
    state, out = step(state, data)
    losses.append(out["loss"])
  losses = jnp.stack(losses)
  assert int(state.step) == 150
  assert float(losses[-30:].mean()) < float(losses[:30].mean())


@pytest.mark.parametrize("objective", ["contrastive", "triplet", "prototypical"])
def test_each_metric_objective_trains_through_the_step(tiny_omniglot, objective):
  """The config path of a metric objective: all-pairs batches, the euclidean head, a finite loss that
  moves the encoder."""
  cfg = tiny_config(tiny_omniglot)
  cfg.train.pair_mode, cfg.train.objective, cfg.model.head = "all_pairs", objective, "euclidean"
  cfg.train.chars_per_batch, cfg.model.init = 5, "he"
  data = train.make_data(cfg, input_pipeline.training_characters(cfg.data, cfg.model.image_size, False))
  state, opt = train.create_train_state(jax.random.PRNGKey(0), cfg)
  step = train.make_train_step(cfg, opt)
  before = np.array(state.params["conv0"]["w"])
  for _ in range(3):
    state, out = step(state, data)
    assert np.isfinite(float(out["loss"]))
  assert not np.allclose(before, state.params["conv0"]["w"])


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(koch.PRESETS))
def test_each_preset_builds_and_runs_two_steps(tiny_omniglot, preset):
  cfg = tiny_config(tiny_omniglot, preset)
  cfg.train.batch_size = 4  # The preset's network and recipe, a small batch.
  cfg.train.chars_per_batch = 3
  cfg.train.fixed_pairs = min(cfg.train.fixed_pairs, 64)
  chars = input_pipeline.training_characters(cfg.data, cfg.model.image_size, cfg.augment.class_rotations)
  data = train.make_data(cfg, chars)
  state, opt = train.create_train_state(jax.random.PRNGKey(0), cfg)
  step = train.make_train_step(cfg, opt)
  before = state.params["head"]["w"]
  before = np.array(before)
  for _ in range(2):
    state, out = step(state, data)
    assert np.isfinite(float(out["loss"]))
  assert int(state.step) == 2
  assert not np.allclose(before, state.params["head"]["w"])


def test_koch_recipe_values():
  c = koch.get_config()
  assert c.model.features == (64, 128, 128, 256) and c.model.kernel_sizes == (10, 7, 4, 4)
  assert c.data.train_drawers == tuple(range(1, 13)) and c.train.batch_size == 128
  assert len(c.validation.alphabets) == 10 and len(c.validation.drawers) == 4
  assert set(c.validation.alphabets).isdisjoint(c.eval.alphabets)
  assert train.steps_per_epoch(c.train) == 150_000 * 9 // 128
  m = koch.get_config("matlab")
  assert (m.train.optimizer, m.train.learning_rate, m.train.batch_size) == ("adam", 6e-5, 180)
  assert train.steps_per_epoch(m.train) * m.train.max_epochs == 10_000


def batch_characters(cfg, data, key):
  """The character ids of the images one training batch draws (either pair mode)."""
  batch = input_pipeline.batch_fn(cfg.train, None)(key, data)
  if cfg.train.pair_mode == "all_pairs":
    return batch.chars
  idx, _ = input_pipeline.independent_index(jax.random.split(key, 4)[0], data, cfg.train)
  return jnp.concatenate([idx.char_a, idx.char_b])


@pytest.mark.slow
def test_training_never_sees_validation_or_test_alphabets(real_omniglot):
  _, data_dir = real_omniglot
  for preset in ("koch", "cpu"):
    cfg = koch.get_config(preset)
    cfg.data.data_dir = data_dir
    chars = input_pipeline.training_characters(cfg.data, cfg.model.image_size, cfg.augment.class_rotations)
    assert cfg.data.train_drawers == tuple(chars.drawers)
    extra = cfg.data.extra_train_alphabets  # cpu: five validation alphabets, the other five validate
    assert len(chars.labels) == (964 + sum(ALPHABET_SIZES[a] for a in extra)) * (4 if preset == "cpu" else 1)
    cfg.train.fixed_pairs = min(cfg.train.fixed_pairs, 5000)
    data = train.make_data(cfg, chars)
    draw = jax.jit(lambda k, cfg=cfg, data=data: batch_characters(cfg, data, k))
    seen = set()
    for i in range(200):  # cpu draws 4 alphabets a batch
      seen |= set(np.asarray(draw(jax.random.PRNGKey(i))).tolist())
    # Rotated copies included: the label of a rotation is the original's plus k * offset.
    originals = {int(chars.labels[c]) % augment.ROTATED_LABEL_OFFSET for c in seen}
    names = {ALPHABETS[int(chars.alphabets[c])] for c in seen}
    held_out = input_pipeline.held_out_characters(cfg.validation, cfg.data, cfg.model.image_size)
    assert originals.isdisjoint(held_out.labels.tolist())
    assert names <= set(chars.alphabet_names) and len(names) == 30 + len(extra)
    assert names.isdisjoint(cfg.validation.alphabets) and names.isdisjoint(koch.TEST_ALPHABETS)


def test_early_stopping_rule():
  assert train.early_stopping(50.0, 2, 60.0, 3, 2) == (60.0, 3, True, False)
  assert train.early_stopping(50.0, 2, 40.0, 3, 2) == (50.0, 2, False, False)
  assert train.early_stopping(50.0, 2, 40.0, 4, 2) == (50.0, 2, False, True)
  assert train.early_stopping(50.0, 2, 40.0, 40, 0)[3] is False  # patience 0: never.


@pytest.mark.slow
def test_early_stopping_stops_and_restores_best(tiny_omniglot, tmp_path, monkeypatch):
  cfg = tiny_config(tiny_omniglot)
  cfg.train.steps_per_epoch = 3
  cfg.train.max_epochs = 20
  cfg.train.patience = 2
  scripted = iter([10.0, 50.0, 40.0, 30.0, 90.0, 95.0])
  seen = []

  def fake_validate(config, params, chars):
    seen.append(jax.tree_util.tree_map(np.array, params))
    return {"val_one_shot": next(scripted), "val_verification": 50.0}

  monkeypatch.setattr(train, "validation_metrics", fake_validate)
  state, best = train.train(cfg, str(tmp_path))
  assert len(seen) == 4 and int(state.step) == 12  # Best at epoch 2, no gain in 3 and 4: stop.
  jax.tree_util.tree_map(np.testing.assert_array_equal, best, seen[1])
  jax.tree_util.tree_map(np.testing.assert_array_equal, workdir.load_params(str(tmp_path), cfg.model), seen[1])
  rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  assert [r["val_one_shot"] for r in rows if "val_one_shot" in r] == [10.0, 50.0, 40.0, 30.0]
  assert (tmp_path / "validation.png").exists()
  # Restarting an early-stopped run does not train further.
  monkeypatch.setattr(train, "validation_metrics", lambda *a: pytest.fail("trained past the early stop"))
  again, best_again = train.train(cfg, str(tmp_path))
  assert int(again.step) == 12
  jax.tree_util.tree_map(np.testing.assert_array_equal, best_again, seen[1])


@pytest.mark.slow
def test_main_smoke_end_to_end(tiny_omniglot, tmp_path):
  manual, _, _ = tiny_omniglot
  workdir = tmp_path / "run"
  proc = run_main(manual, tmp_path, f"--workdir={workdir}", "--config.train.max_epochs=1", "--config.eval.num_tasks=20")
  assert "step 20/20" in proc.stderr and "epoch 1: validation" in proc.stderr
  for name in (
    "config.json",
    "metrics.jsonl",
    "loss.png",
    "validation.png",
    "checkpoints",
    "best",
    "eval.json",
    "accuracy_vs_n.png",
    "test_pairs.png",
    "validation_vs_time.png",
  ):
    assert (workdir / name).exists(), name
  assert "measured " in proc.stderr and " s/step on cpu: an epoch (20 steps) takes about" in proc.stderr
  rows = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
  assert [r["step"] for r in rows if "loss" in r] == [10, 20]
  (val,) = [r for r in rows if "val_one_shot" in r]
  assert val["val_one_shot_lo"] <= val["val_one_shot"] <= val["val_one_shot_hi"]
  assert 0 < rows[0]["elapsed_s"] <= rows[1]["elapsed_s"] <= val["elapsed_s"]
  assert json.load(open(workdir / "config.json"))["train"]["max_epochs"] == 1


def test_time_estimate_points_slow_cpu_runs_to_the_cpu_preset():
  hint = koch.get_config("koch").train.cpu_hint
  slow = train.time_estimate(12.0, 1000, 200_000, "cpu", hint)
  assert "an epoch (1000 steps) takes about 3:20:00" in slow and "the 200000 steps left about 666:40:00" in slow
  assert "--config=configs/koch.py:cpu" in slow
  assert ":cpu" not in train.time_estimate(0.2, 500, 12_000, "cpu", hint)  # 40 minutes: fine on a CPU
  assert ":cpu" not in train.time_estimate(12.0, 1000, 200_000, "gpu", hint)
  own = koch.get_config("cpu").train.cpu_hint  # a slow :cpu run is not sent to itself
  assert ":cpu" not in train.time_estimate(12.0, 1000, 200_000, "cpu", own)
