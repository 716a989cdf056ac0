"""Model: parameter count, shapes, symmetry, initialisation, config errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import koch
from siamese_jax import model


def test_koch_parameter_count():
  cfg = koch.get_config().model
  params = jax.eval_shape(lambda k: model.init(k, cfg), jax.random.PRNGKey(0))
  assert model.num_params(params) == 38_951_745


def test_encode_shapes_and_range():
  cfg = koch.get_config("smoke").model
  params = model.init(jax.random.PRNGKey(0), cfg)
  x = jax.random.randint(jax.random.PRNGKey(1), (5, 32, 32, 1), 0, 256).astype(jnp.uint8)
  e = model.encode(params, x)
  assert e.shape == (5, cfg.embed_dim) and e.dtype == jnp.float32
  assert bool(jnp.all((e > 0) & (e < 1)))


def test_score_is_symmetric():
  cfg = koch.get_config("smoke").model
  params = model.init(jax.random.PRNGKey(0), cfg)
  a = jax.random.uniform(jax.random.PRNGKey(1), (8, 32, 32, 1))
  b = jax.random.uniform(jax.random.PRNGKey(2), (8, 32, 32, 1))
  np.testing.assert_array_equal(model.score(params, a, b), model.score(params, b, a))
  s = model.score(params, a, b)
  assert s.shape == (8,) and bool(jnp.all((s >= 0) & (s <= 1)))


@pytest.mark.parametrize("init,bias_mean,dense_std", [("koch", 0.5, 0.2), ("narrow_normal", 0.0, 0.01)])
def test_initialisations(init, bias_mean, dense_std):
  cfg = koch.get_config().model
  cfg.init = init
  cfg.embed_dim = 512  # Smaller dense layer, same statistics.
  params = model.init(jax.random.PRNGKey(0), cfg)
  assert abs(float(params["conv1"]["w"].std()) - 0.01) < 1e-3
  assert abs(float(params["conv1"]["b"].mean()) - bias_mean) < 5e-3
  assert abs(float(params["embed"]["w"].std()) - dense_std) < 0.05 * dense_std


def test_image_too_small_for_kernels():
  cfg = koch.get_config().model
  cfg.image_size = 40
  with pytest.raises(ValueError, match="too small"):
    model.init(jax.random.PRNGKey(0), cfg)
