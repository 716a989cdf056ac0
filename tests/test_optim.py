"""The optimisers: Koch's layer-wise SGD follows its formula; Adam's decoupled decay touches weights only."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from siamese_jax import optim


@pytest.mark.parametrize(
  "rates", [dict(learning_rate=(0.1, 0.05, 0.2), lr_scales=()), dict(learning_rate=0.1, lr_scales=(1, 0.5, 2))]
)
def test_layerwise_schedule_matches_formula(rates):
  params = {
    "conv0": {"w": jnp.full((2,), 1.0)},
    "embed": {"w": jnp.full((2,), 2.0)},
    "head": {"w": jnp.full((2,), -1.0)},
  }
  lrs, moms, l2s = (0.1, 0.05, 0.2), (0.9, 0.7, 0.6), (0.01, 0.0, 0.1)
  train = ml_collections.ConfigDict(
    dict(
      optimizer="koch_sgd",
      **rates,
      momentum=moms,
      l2=l2s,
      momentum_start=0.5,
      momentum_epochs=2,
      lr_decay=0.5,
    )
  )
  spe = 2
  opt = optim.make_optimizer(train, params, spe)
  state = opt.init(params)
  grads = jax.tree_util.tree_map(lambda w: jnp.full_like(w, 0.3), params)
  names = ["conv0", "embed", "head"]
  want = {n: float(params[n]["w"][0]) for n in names}
  trace = {n: 0.0 for n in names}
  p = params
  for step in range(7):
    updates, state = opt.update(grads, state, p)
    p = optax.apply_updates(p, updates)
    epoch = step // spe
    for i, n in enumerate(names):
      lr = lrs[i] * 0.5**epoch
      mom = 0.5 + (moms[i] - 0.5) * min(epoch / 2, 1.0)
      g = 0.3 + l2s[i] * want[n]
      trace[n] = g + mom * trace[n]
      want[n] -= lr * trace[n]
      np.testing.assert_allclose(float(p[n]["w"][0]), want[n], rtol=1e-5, err_msg=f"{n} step {step}")
    logged = optim.current_learning_rate(train, step, spe, optim.layer_names(params))
    np.testing.assert_allclose(logged, lrs[0] * 0.5**epoch, rtol=1e-6)  # conv0's rate, as train.py logs it


def test_per_layer_length_is_checked():
  params = {"conv0": {"w": jnp.ones(2)}, "embed": {"w": jnp.ones(2)}, "head": {"w": jnp.ones(2)}}
  train = ml_collections.ConfigDict(
    dict(
      optimizer="koch_sgd",
      learning_rate=(0.1, 0.2),
      momentum=0.9,
      l2=0.0,
      momentum_start=0.5,
      momentum_epochs=2,
      lr_decay=0.99,
    )
  )
  try:
    optim.make_optimizer(train, params, 10)
  except ValueError as e:
    assert "learning_rate has 2 values" in str(e)
  else:
    raise AssertionError("expected a ValueError")


def test_adam_cosine_schedule():
  train = ml_collections.ConfigDict(
    dict(optimizer="adam", learning_rate=1e-3, lr_schedule="cosine", max_epochs=4, b1=0.9, b2=0.999)
  )
  lr = lambda step: optim.current_learning_rate(train, step, 25, ["conv0"])  # noqa: E731
  np.testing.assert_allclose([lr(0), lr(50), lr(100)], [1e-3, 5e-4, 0.0], atol=1e-9)
  train.lr_schedule = "constant"
  assert lr(100) == 1e-3


def test_adam_weight_decay_shrinks_weights_only():
  params = {"conv0": {"w": jnp.ones((2, 2)), "b": jnp.ones(2), "g": jnp.ones((1, 2))}, "head": {"w": jnp.ones(2)}}
  train = ml_collections.ConfigDict(
    dict(optimizer="adam", learning_rate=0.1, lr_schedule="constant", max_epochs=1, b1=0.9, b2=0.999)
  )
  zero = jax.tree_util.tree_map(jnp.zeros_like, params)
  for wd, w_after in ((0.0, 1.0), (0.5, 1.0 - 0.1 * 0.5)):
    train.weight_decay = wd
    tx = optim.make_optimizer(train, params, 10)
    updates, _ = tx.update(zero, tx.init(params), params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_allclose(new["conv0"]["w"], w_after, rtol=1e-6)
    np.testing.assert_allclose(new["head"]["w"], w_after, rtol=1e-6)
    np.testing.assert_allclose(new["conv0"]["b"], 1.0)
    np.testing.assert_allclose(new["conv0"]["g"], 1.0)
