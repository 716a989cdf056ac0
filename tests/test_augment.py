"""Affine distortions: identity, known moves, parameter ranges, shapes and dtypes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import koch
from siamese_jax import augment


def dot_image(row, col, size=11, dtype=jnp.float32):
  img = np.zeros((size, size, 1), np.float32)
  img[row, col] = 1.0
  return jnp.asarray(img, dtype)


def with_(**kw):
  return augment.identity()._replace(**{k: jnp.float32(v) for k, v in kw.items()})


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.uint8])
def test_identity_is_identity(dtype):
  img = jax.random.randint(jax.random.PRNGKey(0), (20, 17, 1), 0, 256).astype(dtype)
  out = augment.warp(img, augment.identity())
  assert out.shape == img.shape and out.dtype == img.dtype
  np.testing.assert_array_equal(out, img)


def test_rotation_moves_a_known_pixel():
  # Rotating +90 degrees about the centre (5, 5): (row 5, col 8) -> (row 8, col 5).
  out = augment.warp(dot_image(5, 8), with_(theta=90.0))
  assert np.unravel_index(np.argmax(out), out.shape)[:2] == (8, 5)
  np.testing.assert_allclose(float(out.max()), 1.0, atol=1e-5)


def test_translation_moves_a_known_pixel():
  out = augment.warp(dot_image(5, 5), with_(t_x=2.0, t_y=-1.0))
  assert np.unravel_index(np.argmax(out), out.shape)[:2] == (4, 7)


def test_scale_moves_away_from_centre():
  out = augment.warp(dot_image(5, 7), with_(s_x=1.5))  # 2 columns right of centre -> 3.
  assert np.unravel_index(np.argmax(out), out.shape)[:2] == (5, 8)


def test_uint8_paper_fill():
  img = jnp.full((9, 9, 1), 255, jnp.uint8)
  out = augment.warp(img, with_(t_x=3.0))
  assert out.dtype == jnp.uint8 and int(out.min()) == 255  # Paper comes in, not ink.


def test_sampled_parameters_in_range():
  r = koch.get_config().augment
  a = augment.sample(jax.random.PRNGKey(3), (20000,), r)
  checks = [
    (a.theta, -10, 10, 0),
    (a.rho_x, -0.3, 0.3, 0),
    (a.rho_y, -0.3, 0.3, 0),
    (a.s_x, 0.8, 1.2, 1),
    (a.s_y, 0.8, 1.2, 1),
    (a.t_x, -2, 2, 0),
    (a.t_y, -2, 2, 0),
  ]
  for v, lo, hi, ident in checks:
    v = np.asarray(v)
    assert v.min() >= lo and v.max() <= hi
    off = np.mean(v == ident)
    assert abs(off - 0.5) < 0.02  # Each component applied with probability 1/2.


def test_batch_shapes_and_dtype():
  x = jax.random.uniform(jax.random.PRNGKey(0), (6, 32, 32, 1))
  ranges = koch.get_config().augment
  out = jax.jit(lambda k, x: augment.distort_batch(k, x, ranges))(jax.random.PRNGKey(1), x)
  assert out.shape == x.shape and out.dtype == x.dtype
  assert not np.allclose(out, x)


def test_rotated_classes_are_new_characters():
  from siamese_jax.omniglot.loader import CharacterArray

  images = np.arange(2 * 3 * 4 * 4).reshape(2, 3, 4, 4, 1).astype(np.uint8)
  chars = CharacterArray(images, np.array([5, 9]), np.array([0, 7]), np.arange(1, 4))
  out = augment.with_rotated_classes(chars)
  assert out.images.shape == (8, 3, 4, 4, 1) and out.images.dtype == np.uint8
  assert list(out.alphabets) == [0, 7] * 4 and len(set(out.labels.tolist())) == 8
  np.testing.assert_array_equal(out.images[:2], images)
  np.testing.assert_array_equal(out.images[2 + 1, 2, :, :, 0], np.rot90(images[1, 2, :, :, 0]))
  np.testing.assert_array_equal(out.images[6, 0, :, :, 0], np.rot90(images[0, 0, :, :, 0], 3))


def test_rotated_classes_form_groups_of_their_own():
  from siamese_jax import input_pipeline
  from siamese_jax.omniglot.loader import CharacterArray

  images = np.arange(2 * 3 * 4 * 4).reshape(2, 3, 4, 4, 1).astype(np.uint8)
  chars = CharacterArray(images, np.array([5, 9]), np.array([0, 7]), np.arange(1, 4))
  # Rotations keep the groups they had: alphabet-major, variant-minor (same sampling as before).
  rot = input_pipeline.character_groups(augment.with_rotated_classes(chars))
  np.testing.assert_array_equal(np.unique(rot, return_inverse=True)[1], [0, 4, 1, 5, 2, 6, 3, 7])
