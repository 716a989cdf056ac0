"""Koch et al.'s affine distortions, sampled and applied on the device, vectorised over a batch.

A distortion is 7 numbers (theta, rho_x, rho_y, s_x, s_y, t_x, t_y):
rotation theta (degrees), shear rho_x, rho_y, scale s_x, s_y and translation t_x,
t_y (pixels), composed as T = translate . rotate . shear . scale about the image
centre. Each component differs from the identity with probability 1/2.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Affine(NamedTuple):
  """Distortion parameters; each field has the batch shape."""

  theta: jax.Array  # degrees
  rho_x: jax.Array
  rho_y: jax.Array
  s_x: jax.Array
  s_y: jax.Array
  t_x: jax.Array  # pixels, along columns
  t_y: jax.Array  # pixels, along rows


def identity(shape=()) -> Affine:
  z, o = jnp.zeros(shape), jnp.ones(shape)
  return Affine(z, z, z, o, o, z, z)


def sample(key: jax.Array, shape, ranges) -> Affine:
  """Samples distortions with the given batch shape; components off with prob 1 - ranges.prob."""
  ks = jax.random.split(key, 14)
  ident = identity(shape)

  def draw(i, lo, hi, off):
    val = jax.random.uniform(ks[2 * i], shape, minval=lo, maxval=hi)
    on = jax.random.bernoulli(ks[2 * i + 1], ranges.prob, shape)
    return jnp.where(on, val, off)

  return Affine(
    theta=draw(0, -ranges.theta, ranges.theta, ident.theta),
    rho_x=draw(1, -ranges.shear, ranges.shear, ident.rho_x),
    rho_y=draw(2, -ranges.shear, ranges.shear, ident.rho_y),
    s_x=draw(3, ranges.scale_min, ranges.scale_max, ident.s_x),
    s_y=draw(4, ranges.scale_min, ranges.scale_max, ident.s_y),
    t_x=draw(5, -ranges.translate, ranges.translate, ident.t_x),
    t_y=draw(6, -ranges.translate, ranges.translate, ident.t_y),
  )


def scaled(ranges, strength: float):
  """A copy of the augment config `ranges` with each range's deviation from identity times `strength`."""
  a = ranges.copy_and_resolve_references()
  a.theta, a.shear, a.translate = strength * a.theta, strength * a.shear, strength * a.translate
  a.scale_min, a.scale_max = 1 - strength * (1 - a.scale_min), 1 + strength * (a.scale_max - 1)
  return a


def matrix(a: Affine) -> jax.Array:
  """The 2x2 linear part in (x=column, y=row) coordinates: R(theta) @ shear @ scale."""
  th = jnp.deg2rad(a.theta)
  c, s = jnp.cos(th), jnp.sin(th)
  rot = jnp.array([[c, -s], [s, c]])
  shear = jnp.array([[1.0, a.rho_x], [a.rho_y, 1.0]])
  scale = jnp.array([[a.s_x, 0.0], [0.0, a.s_y]])
  return rot @ shear @ scale


def warp(image: jax.Array, a: Affine, cval: float | None = None) -> jax.Array:
  """Applies one distortion to an image [H, W, C] (bilinear); same shape and dtype.

  An output pixel at p (x = column, y = row) takes the input at
  A^-1 (p - centre - t) + centre. Outside the image: `cval` (default: 255 for
  uint8 paper-white images, 0 for float ink images).
  """
  h, w = image.shape[:2]
  if cval is None:
    cval = 255.0 if image.dtype == jnp.uint8 else 0.0
  centre = jnp.array([(w - 1) / 2.0, (h - 1) / 2.0])
  ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
  out_xy = jnp.stack([xs.ravel(), ys.ravel()])  # [2, H*W]
  inv = jnp.linalg.inv(matrix(a))
  in_xy = inv @ (out_xy - centre[:, None] - jnp.stack([a.t_x, a.t_y])[:, None]) + centre[:, None]
  coords = [in_xy[1].reshape(h, w), in_xy[0].reshape(h, w)]  # (row, col)
  x = image.astype(jnp.float32)
  out = jnp.stack(
    [
      jax.scipy.ndimage.map_coordinates(x[..., ch], coords, order=1, mode="constant", cval=cval)
      for ch in range(x.shape[-1])
    ],
    axis=-1,
  )
  if image.dtype == jnp.uint8:
    out = jnp.clip(jnp.round(out), 0, 255)
  return out.astype(image.dtype)


def warp_batch(images: jax.Array, a: Affine) -> jax.Array:
  """`warp` vectorised over images [B, H, W, C] and distortions with batch shape [B]."""
  return jax.vmap(warp)(images, a)


def distort_batch(key: jax.Array, images: jax.Array, ranges) -> jax.Array:
  """Samples an independent distortion per image [B, H, W, C] and applies it."""
  return warp_batch(images, sample(key, images.shape[:1], ranges))


ROTATED_LABEL_OFFSET = 10000  # label of a character's copy rotated by k * 90 degrees: label + k * this
ROTATIONS = 4


def with_rotated_classes(chars):
  """Adds each character rotated by 90, 180 and 270 degrees as three new characters.

  A CharacterArray of C characters becomes one of 4C (alphabet ids repeated; the
  labels of the copies are offset by ROTATED_LABEL_OFFSET * k), the class augmentation of
  Vinyals et al. (2016) and Snell et al. (2017). Done once on the host.
  """
  import dataclasses  # pylint: disable=g-import-not-at-top

  import numpy as np  # pylint: disable=g-import-not-at-top

  rotated = [np.rot90(chars.images, k, axes=(2, 3)) for k in range(ROTATIONS)]
  return dataclasses.replace(
    chars,
    images=np.ascontiguousarray(np.concatenate(rotated)),
    labels=np.concatenate([chars.labels + ROTATED_LABEL_OFFSET * k for k in range(ROTATIONS)]),
    alphabets=np.tile(chars.alphabets, ROTATIONS),
  )
