"""Koch et al. (2015) Siamese network as pure functions over a parameter pytree.

The structure (`Spec`: input size, conv widths and kernels, embedding size, group norm) comes from
the config's model section (`spec`); the parameters are a plain dict:
  {"conv0": {"w": [k, k, c_in, c_out], "b": [c_out]}, ..., "conv{L-1}": ...,
   "embed": {"w": [F, E], "b": [E]}, "head": {"w": [E, 1], "b": [1]}}
Every conv is followed (with `model.norm_groups` = G > 0) by a group norm of G
groups whose gain is "g" [G, c_out / G] (its shape says G) and whose shift is the
conv's "b", then by ReLU and, except the last, a 2x2 max-pool; the flattened
features go through a dense layer with sigmoid (the embedding); the head scores
a pair (one logit): Koch's dense layer on |e1 - e2| ("l1"), or a learned scale and shift of the
negative squared distance ("euclidean") or of the cosine ("cosine"), whose "w" is [1, 1] (`HEADS`).
The input has `channels` channels (1 grey, 3 RGB).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from siamese_jax import convs

Params = dict[str, dict[str, jax.Array]]


@dataclasses.dataclass(frozen=True)
class Spec:
  """The network's structure: what `init` builds and `encode` runs (hashable: a static argument)."""

  image_size: int
  features: tuple[int, ...]  # conv widths
  kernel_sizes: tuple[int, ...]
  embed_dim: int
  norm_groups: int = 0  # > 0: a group norm of this many groups after every conv
  channels: int = 1  # input channels: 1 grey, 3 RGB
  head: str = "l1"  # a name in HEADS


def spec(model_config) -> Spec:
  """The `Spec` of a config's model section."""
  m = model_config
  return Spec(
    int(m.image_size),
    tuple(m.features),
    tuple(m.kernel_sizes),
    int(m.embed_dim),
    int(m.norm_groups),
    int(m.channels),
    str(m.head),
  )


def feature_size(image_size: int, kernel_sizes) -> int:
  """Spatial side of the last conv's output for a square input (valid convs, 2x2 pools)."""
  side = image_size
  for i, k in enumerate(kernel_sizes):
    side = side - k + 1
    if side < 1:
      raise ValueError(
        f"image_size {image_size} is too small for kernels {tuple(kernel_sizes)}"
        f" (conv{i} gets a {side + k - 1}x{side + k - 1} input)"
      )
    if i < len(kernel_sizes) - 1:
      side //= 2
  return side


def activation_bytes(spec: Spec, images: int) -> int:
  """A lower bound on the memory a train step over `images` images needs: every layer's float32
  output kept for the backward pass (the inputs, each conv's output and its pooled form, the embedding)."""
  side, per_image = spec.image_size, spec.image_size**2
  for i, (c, k) in enumerate(zip(spec.features, spec.kernel_sizes)):
    side = side - k + 1
    per_image += side * side * c
    if i < len(spec.features) - 1:
      side //= 2
      per_image += side * side * c
  return 4 * images * (per_image + spec.embed_dim)


def _normal(key, shape, mean, std):
  return mean + std * jax.random.normal(key, shape, jnp.float32)


DTYPES = ("float32", "bfloat16")  # compute dtypes (model.dtype)


def compute_dtype(name: str, backend: str | None = None, native_bf16: bool | None = None):
  """The compute dtype for `model.dtype` = name on `backend` (default: JAX's), and why it differs.

  bfloat16 is turned off (float32) on XLA:CPU. Without native bfloat16 it is emulated
  and slower (Koch network, AMD EPYC with AVX2: 9.5 vs 11.7 pairs/s). With it (AVX-512
  BF16; `host.native_bfloat16`), XLA:CPU's dots use it but its convolutions do not
  (about 80 GFLOP/s in either dtype), so `convs.conv_cpu` computes them in float32
  and the casts cost more than the bfloat16 dense layer saves (AMD EPYC with AVX-512
  BF16: 35.1 vs 38.2 pairs/s). native_bf16 overrides the CPU check (tests).
  Returns (jnp dtype, None or a one-line reason).
  """
  from siamese_jax import host  # pylint: disable=g-import-not-at-top

  if name == "bfloat16" and (backend or jax.default_backend()) == "cpu":
    info = host.cpu_info()
    native = host.native_bfloat16(info) if native_bf16 is None else native_bf16
    why = (
      "has native bfloat16 (AVX-512 BF16 or AMX), but XLA:CPU's convolutions do not use it"
      if native
      else "has no native bfloat16 (AVX-512 BF16 or AMX)"
    )
    return jnp.dtype(jnp.float32), (
      f"model.dtype=bfloat16 computes in float32 here: this CPU ({info['model']}) {why}; bfloat16 is slower"
      " than float32 on XLA:CPU (docs/results.md)"
    )
  return jnp.dtype(name), None


# init name -> (conv w std, conv b mean, conv b std, dense w std, dense b mean, dense b std)
INITS = {
  # The seed MATLAB example: every weight and bias N(0, 0.01).
  "narrow_normal": (0.01, 0.0, 0.01, 0.01, 0.0, 0.01),
  # Koch et al.: conv W N(0, 1e-2), biases N(0.5, 1e-2), dense W N(0, 2e-1).
  "koch": (0.01, 0.5, 0.01, 0.2, 0.5, 0.01),
  # He et al. for the ReLU convs (std sqrt(2 / fan_in)), LeCun for the dense layers
  # (std sqrt(1 / fan_in)), zero biases: keeps the signal's scale through depth.
  "he": None,
}


def init(key: jax.Array, config: ml_collections.ConfigDict) -> Params:
  """Builds the parameter pytree from a key and the model config.

  config: image_size, channels, features (conv widths), kernel_sizes, embed_dim, init, norm_groups.
  """
  if config.init not in INITS:
    raise ValueError(f"model.init={config.init!r}; choose from {sorted(INITS)}")
  he = config.init == "he"
  cw, cbm, cbs, dw, dbm, dbs = INITS[config.init] or (None, 0.0, 0.0, None, 0.0, 0.0)
  features, kernels = tuple(config.features), tuple(config.kernel_sizes)
  if len(features) != len(kernels):
    raise ValueError("model.features and model.kernel_sizes differ in length")
  side = feature_size(config.image_size, kernels)
  keys = jax.random.split(key, 2 * len(features) + 4)
  params, c_in = {}, int(config.channels)
  for i, (c_out, k) in enumerate(zip(features, kernels)):
    params[f"conv{i}"] = {
      "w": _normal(keys[2 * i], (k, k, c_in, c_out), 0.0, (2.0 / (k * k * c_in)) ** 0.5 if he else cw),
      "b": _normal(keys[2 * i + 1], (c_out,), cbm, cbs),
    }
    if config.norm_groups:
      groups = config.norm_groups  # the gain's shape [G, c_out / G] carries G
      params[f"conv{i}"]["g"] = jnp.ones((groups, c_out // groups), jnp.float32)
    c_in = c_out
  flat = side * side * c_in
  params["embed"] = {
    "w": _normal(keys[-4], (flat, config.embed_dim), 0.0, (1.0 / flat) ** 0.5 if he else dw),
    "b": _normal(keys[-3], (config.embed_dim,), dbm, dbs),
  }
  if config.head == "l1":
    params["head"] = {
      "w": _normal(keys[-2], (config.embed_dim, 1), 0.0, (1.0 / config.embed_dim) ** 0.5 if he else dw),
      "b": _normal(keys[-1], (1,), dbm, dbs),
    }
  else:  # one learned scale: 1 / E for squared distances (up to E), 1 for cosines
    scale = 1.0 / config.embed_dim if config.head == "euclidean" else 1.0
    params["head"] = {"w": jnp.full((1, 1), scale, jnp.float32), "b": jnp.zeros((1,), jnp.float32)}
  return params


def num_params(params: Any) -> int:
  """Total number of scalars in a pytree."""
  return sum(x.size for x in jax.tree_util.tree_leaves(params))


def preprocess(images: jax.Array) -> jax.Array:
  """uint8 images (0 ink, 255 paper) -> float32 ink intensity in [0, 1]; floats pass through."""
  if images.dtype == jnp.uint8:
    return 1.0 - images.astype(jnp.float32) / 255.0
  return images.astype(jnp.float32)


def _group_mean(sums: jax.Array, groups: int, pixels: int) -> jax.Array:
  """Per-channel sums [B, C] over `pixels` pixels -> the mean over each channel's group, [B, C]."""
  b, c = sums.shape
  per = c // groups
  return jnp.repeat(sums.reshape(b, groups, per).sum(-1) / (pixels * per), per, axis=1)


@jax.custom_vjp
def group_norm(x: jax.Array, gain: jax.Array, bias: jax.Array) -> jax.Array:
  """Group norm (Wu & He, 2018) times gain plus bias: x [B, H, W, C] float32, gain [G, C / G]
  (its shape gives the G groups), bias [C]. Statistics per image and group, none kept
  between calls (training = inference). A custom VJP in two passes over the pixels per
  direction: on XLA:CPU the `cpu` preset's step costs 24 ms more than without a norm (215 ms),
  where autodiff of the textbook form cost 97 ms more."""
  return _group_norm_fwd(x, gain, bias)[0]


def _group_norm_fwd(x, gain, bias, eps=1e-5):
  b, h, w, c = x.shape
  groups, g = gain.shape[0], gain.reshape(-1)
  xf = x.reshape(b, h * w, c)
  mean = _group_mean(jnp.sum(xf, axis=1), groups, h * w)
  mean_sq = _group_mean(jnp.sum(xf * xf, axis=1), groups, h * w)
  inv = jax.lax.rsqrt(jnp.maximum(mean_sq - mean * mean, 0.0) + eps)  # [B, C]
  xhat = (xf - mean[:, None]) * inv[:, None]
  # The residuals keep x (the conv's output, in memory anyway), not xhat: one tensor less to write.
  return (xhat * g + bias).reshape(x.shape), (x, mean, inv, gain)


def _group_norm_bwd(res, dy):
  x, mean, inv, gain = res
  b, h, w, c = x.shape
  pixels, groups, g = h * w, gain.shape[0], gain.reshape(-1)
  xhat = (x.reshape(b, pixels, c) - mean[:, None]) * inv[:, None]
  dyf = dy.reshape(b, pixels, c)
  sum_dy = jnp.sum(dyf, axis=1)  # [B, C]
  sum_dy_xhat = jnp.sum(dyf * xhat, axis=1)
  m_a = _group_mean(sum_dy * g, groups, pixels)
  m_b = _group_mean(sum_dy_xhat * g, groups, pixels)
  dx = (dyf * g - m_a[:, None] - xhat * m_b[:, None]) * inv[:, None]
  return dx.reshape(dy.shape), sum_dy_xhat.sum(0).reshape(gain.shape), sum_dy.sum(0)


group_norm.defvjp(_group_norm_fwd, _group_norm_bwd)


def _conv_block(x, p, dtype, conv, norm: bool):
  """conv + bias, or with `norm` group norm of the conv x its gain "g" + bias."""
  y = conv(x.astype(dtype), p["w"].astype(dtype))
  if norm:
    return group_norm(y.astype(jnp.float32), p["g"], p["b"]).astype(dtype)
  return y + p["b"].astype(dtype)


def max_pool(x: jax.Array) -> jax.Array:
  """2x2 max-pool, stride 2, VALID (an odd last row/column is dropped): [B,H,W,C] -> [B,H//2,W//2,C].

  Written as a reshape and a max rather than reduce_window: its gradient is then
  a cheap compare-and-select instead of select_and_scatter, which is slow on CPU.
  """
  b, h, w, c = x.shape
  x = x[:, : h // 2 * 2, : w // 2 * 2, :]
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def encode(params: Params, images: jax.Array, spec: Spec, dtype=jnp.float32, conv_impl: str = "auto") -> jax.Array:
  """Embeds images [B, H, W, C] (uint8 or float ink; C = spec.channels) to float32 [B, E] in (0, 1).

  dtype: compute dtype of convs and the dense layer (parameters stay float32);
  conv_impl: a name in `convs.CONV_IMPLS` or "auto" (see `convs.conv_impl_for_backend`).
  """
  conv = convs.conv_impl_for_backend(conv_impl)
  x = preprocess(images)
  n = len(spec.features)
  for i in range(n):
    x = _conv_block(x, params[f"conv{i}"], dtype, conv, spec.norm_groups > 0)
    # Pool, then ReLU: max and ReLU commute, so the values and gradients are those of
    # relu-then-pool, with the ReLU on a quarter of the pixels.
    x = jax.nn.relu(max_pool(x) if i < n - 1 else x)
  x = x.reshape(x.shape[0], -1)
  p = params["embed"]
  # float32 accumulation and result: in bfloat16 this is also XLA:CPU's fast path (with AVX-512
  # BF16, 985 against 112 GFLOP/s for a bfloat16 result).
  x = jnp.dot(x, p["w"].astype(dtype), preferred_element_type=jnp.float32) + p["b"]
  return jax.nn.sigmoid(x)


def pair_logits(params: Params, e1: jax.Array, e2: jax.Array, head: str = "l1") -> jax.Array:
  """Logit that two embeddings [..., E] show the same character, by the head `head` (`HEADS`); shape [...]."""
  p = params["head"]
  if head == "euclidean":
    return -p["w"][0, 0] * jnp.sum((e1 - e2) ** 2, axis=-1) + p["b"][0]
  if head == "cosine":
    return p["w"][0, 0] * _cosine(e1, e2) + p["b"][0]
  return (jnp.abs(e1 - e2) @ p["w"])[..., 0] + p["b"][0]


def _cosine(e1: jax.Array, e2: jax.Array) -> jax.Array:
  norm = lambda e: e / jnp.maximum(jnp.linalg.norm(e, axis=-1, keepdims=True), 1e-12)  # noqa: E731
  return jnp.sum(norm(e1) * norm(e2), axis=-1)


def squared_distances(emb: jax.Array) -> jax.Array:
  """[N, N] squared Euclidean distances between embeddings emb [N, E] (exactly 0 on the diagonal)."""
  sq = jnp.sum(emb * emb, axis=-1)
  d2 = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * emb @ emb.T, 0.0)
  return d2 * (1.0 - jnp.eye(emb.shape[0], dtype=emb.dtype))


HEADS = ("l1", "euclidean", "cosine")


def _gram_by_dimension(e: jax.Array, w: jax.Array) -> jax.Array:
  """sum_k w_k |e_ik - e_jk| as a scan over the E dimensions, each adding one [N, N] term."""
  step = lambda acc, x: (acc + x[1] * jnp.abs(x[0][:, None] - x[0][None, :]), None)
  return jax.lax.scan(step, jnp.zeros((e.shape[0],) * 2, e.dtype), (e.T, w))[0]


def _gram_grads_by_dimension(e: jax.Array, w: jax.Array, g: jax.Array):
  """The gradients of `_gram_by_dimension` for the cotangent g [N, N], one dimension a step."""
  gg = g + g.T

  def step(_, x):
    ek, wk = x
    d = ek[:, None] - ek[None, :]
    return None, (wk * jnp.sum(gg * jnp.sign(d), 1), jnp.sum(g * jnp.abs(d)))

  de_t, dw = jax.lax.scan(step, None, (e.T, w))[1]
  return de_t.T, dw


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _weighted_l1_gram(e: jax.Array, w: jax.Array, by_dimension: bool) -> jax.Array:
  """[N, N] with entry (i, j) = sum_k w_k |e_ik - e_jk|, for e [N, E] float32 and w [E].

  by_dimension: accumulate one embedding dimension at a time (the CPU form: on XLA:CPU the
  reduction over the minor axis of an [N, N, E] tensor is slow; at N = 128, E = 512 forward and
  backward took 13-15 ms this way against 33 ms in a probe, and the `:cpu` step 1.09x faster in
  `siamese_jax.tools.cpu_step`; docs/results.md); otherwise one broadcast [N, N, E] reduction (the
  accelerator form: one kernel, no loop).
  """
  if by_dimension:
    return _gram_by_dimension(e, w)
  return jnp.sum(jnp.abs(e[:, None, :] - e[None, :, :]) * w, -1)


def _weighted_l1_gram_fwd(e, w, by_dimension):
  return _weighted_l1_gram(e, w, by_dimension), (e, w)


def _weighted_l1_gram_bwd(by_dimension, res, g):
  # The matrix is symmetric in (i, j), so row i's gradient gathers g + g^T in one reduction
  # over the minor-most pair axis; on XLA:CPU autodiff's two reductions (over rows and over
  # columns of an [N, N, E] tensor) cost 110 ms at N = 128, E = 512, this 13 ms.
  e, w = res
  if by_dimension:
    return _gram_grads_by_dimension(e, w, g)
  d = e[:, None, :] - e[None, :, :]
  de = jnp.sum((g + g.T)[:, :, None] * jnp.sign(d), axis=1) * w
  return de, jnp.sum(g[:, :, None] * jnp.abs(d), axis=(0, 1))


_weighted_l1_gram.defvjp(_weighted_l1_gram_fwd, _weighted_l1_gram_bwd)


def all_pair_logits(params: Params, emb: jax.Array, by_dimension: bool | None = None, head: str = "l1") -> jax.Array:
  """`pair_logits` of every pair (i, j) of embeddings emb [N, E]: a symmetric [N, N].

  by_dimension: the formulation of `_weighted_l1_gram` (head "l1"); None picks it on the CPU backend.
  """
  emb = emb.astype(jnp.float32)
  if head == "euclidean":
    return -params["head"]["w"][0, 0] * squared_distances(emb) + params["head"]["b"][0]
  if head == "cosine":
    return params["head"]["w"][0, 0] * _cosine(emb[:, None, :], emb[None, :, :]) + params["head"]["b"][0]
  if by_dimension is None:
    by_dimension = jax.default_backend() == "cpu"
  p = params["head"]
  return _weighted_l1_gram(emb.astype(jnp.float32), p["w"][:, 0], by_dimension) + p["b"][0]


def score(params: Params, spec: Spec, images_a: jax.Array, images_b: jax.Array) -> jax.Array:
  """Probability [B] that images_a[i] and images_b[i] show the same character."""
  e_a, e_b = encode(params, images_a, spec), encode(params, images_b, spec)
  return jax.nn.sigmoid(pair_logits(params, e_a, e_b, spec.head))
