"""Where bfloat16 could pay on XLA:CPU: dots, convolutions, and the Koch layers as bfloat16 dots.

Prints, on this CPU (one process, all its cores):
  1. dot GFLOP/s in float32 and in bfloat16 with float32 accumulation, for a square dot and for
     two im2col-shaped dots of the Koch network; and one of Koch's convolutions in both dtypes;
  2. per Koch layer (64 images), forward + backward ms of the shipped float32 formulation
     (`convs.conv_cpu`), of an im2col convolution whose dots run in bfloat16 (float32
     accumulation; a custom VJP, all three products as dots), and of building its im2col
     patches alone, with the bfloat16 gradients' relative error;
  3. the whole Koch encoder-and-head gradient (64 images) in float32 and bfloat16 with the shipped
     `cpu` formulation (which computes its convolutions in float32) and with `patches` (im2col).

  python experiments/bf16_convs.py
"""

from __future__ import annotations

import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root

from absl import app, flags

from experiments import timing

_BATCH = flags.DEFINE_integer("batch", 64, "images per layer probe and per gradient step")
_REPEATS = flags.DEFINE_integer("repeats", 4, "timed calls per measurement (the minimum is printed)")


def koch_layer_shapes() -> list[tuple[tuple[int, int, int], tuple[int, int, int, int]]]:
  """The `koch` preset's convolutions: (input NHWC without the batch, kernel HWIO) per layer,
  from its image size, kernels and widths (VALID convs, a 2x2 pool after each but the last)."""
  from configs import koch  # pylint: disable=g-import-not-at-top

  m = koch.get_config("koch").model
  side, c_in, layers = m.image_size, 1, []
  for k, c_out in zip(m.kernel_sizes, m.features):
    layers.append(((side, side, c_in), (k, k, c_in, c_out)))
    side, c_in = (side - k + 1) // 2, c_out
  return layers


def best_ms(f, *args, repeats: int) -> float:
  """The fastest of `repeats` calls of `f(*args)` after warm-up, in ms."""
  import jax  # pylint: disable=g-import-not-at-top

  return 1e3 * min(timing.block_timings(lambda: f(*args), repeats, 1, jax.block_until_ready))


def bf16_im2col_conv():
  """A VALID NHWC x HWIO convolution whose three products (y, dx, dw) are bfloat16 dots accumulating
  in float32; inputs and outputs keep their dtype."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from siamese_jax import convs  # pylint: disable=g-import-not-at-top

  bf16 = jnp.bfloat16

  def forward(x, w):
    k_h, k_w, c_in, c_out = w.shape
    b, h, w_out = x.shape[0], x.shape[1] - k_h + 1, x.shape[2] - k_w + 1
    patches = convs._patches(x.astype(bf16), range(k_h), k_w, h, w_out)  # pylint: disable=protected-access
    y = jnp.dot(patches, w.astype(bf16).reshape(-1, c_out), preferred_element_type=jnp.float32)
    return y.reshape(b, h, w_out, c_out).astype(x.dtype)

  @jax.custom_vjp
  def conv(x, w):
    return forward(x, w)

  def backward(res, dy):
    x, w = res
    k_h, k_w, c_in, _ = w.shape
    dw = convs._weight_grad_gemm(x.astype(bf16), dy.astype(bf16), k_h, k_w).astype(w.dtype)  # pylint: disable=protected-access
    if c_in == 1:  # the first layer's input gradient is not needed
      return jnp.zeros_like(x), dw
    dy_padded = jnp.pad(dy, ((0, 0), (k_h - 1, k_h - 1), (k_w - 1, k_w - 1), (0, 0)))
    return forward(dy_padded, jnp.transpose(w[::-1, ::-1], (0, 1, 3, 2))), dw

  conv.defvjp(lambda x, w: (forward(x, w), (x, w)), backward)
  return conv


def bf16_patches(x, k):
  """The bfloat16 im2col patches of x [B, H, W, C] for a VALID k = (k_h, k_w) kernel: [B*H'*W', k_h*k_w*C]."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from siamese_jax import convs  # pylint: disable=g-import-not-at-top

  h, w = x.shape[1] - k[0] + 1, x.shape[2] - k[1] + 1
  return convs._patches(x.astype(jnp.bfloat16), range(k[0]), k[1], h, w)  # pylint: disable=protected-access


def dots_and_convs(repeats: int) -> None:
  """Section 1: dot and convolution rates in both dtypes."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from siamese_jax import convs  # pylint: disable=g-import-not-at-top

  dot = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32))
  for m, k, n in [(4096, 4096, 4096), (64 * 42 * 42, 7 * 7 * 64, 128), (64 * 81, 4 * 4 * 128, 256)]:
    rates = []
    for dtype in (jnp.float32, jnp.bfloat16):
      ms = best_ms(dot, jnp.ones((m, k), dtype), jnp.ones((k, n), dtype), repeats=repeats)
      rates.append(f"{jnp.dtype(dtype).name} {2 * m * k * n / ms / 1e6:.0f}")
    print(f"dot [{m}, {k}] x [{k}, {n}], GFLOP/s: " + ", ".join(rates), flush=True)
  x_shape, w_shape = (64, 48, 48, 64), (7, 7, 64, 128)
  conv = jax.jit(convs.conv_xla)
  times = [
    f"{jnp.dtype(d).name} {best_ms(conv, jnp.ones(x_shape, d), jnp.ones(w_shape, d), repeats=repeats):.0f} ms"
    for d in (jnp.float32, jnp.bfloat16)
  ]
  print(f"lax convolution {x_shape} x {w_shape}, forward: " + ", ".join(times), flush=True)


def koch_layers(batch: int, repeats: int) -> None:
  """Section 2: forward + backward of each Koch layer, float32 shipped vs bfloat16 dots."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from siamese_jax import convs  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  bf16_conv = bf16_im2col_conv()
  print("| layer | shapes | shipped (float32) | its ms | bfloat16 dots, ms | im2col alone, ms | bfloat16 error |")
  print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
  for i, (x_shape, w_shape) in enumerate(koch_layer_shapes()):
    x = jnp.asarray(rng.standard_normal((batch, *x_shape)), jnp.float32)
    w = jnp.asarray(0.05 * rng.standard_normal(w_shape), jnp.float32)
    wrt = (0, 1) if x_shape[-1] > 1 else (1,)
    grads = {}
    row = []
    for name, conv in (("cpu", convs.conv_cpu), ("bf16", bf16_conv)):
      loss = lambda x, w, conv=conv: 1e-3 * jnp.sum(conv(x, w) ** 2)
      g = jax.jit(jax.grad(loss, argnums=wrt))
      row.append(best_ms(g, x, w, repeats=repeats))
      grads[name] = g(x, w)
    row.append(best_ms(jax.jit(functools.partial(bf16_patches, k=w_shape[:2])), x, repeats=repeats))
    err = max(float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b)) for a, b in zip(grads["bf16"], grads["cpu"]))
    formulation = convs.cpu_formulation((batch, *x_shape), w_shape)
    print(
      f"| conv{i} | {x_shape} x {w_shape} | {formulation} | {row[0]:.0f} | {row[1]:.0f} | {row[2]:.0f} | {err:.1e} |"
    )


def koch_step(batch: int, repeats: int) -> None:
  """Section 3: the Koch network's whole gradient in float32 (shipped) and bfloat16 (im2col dots)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from configs import koch  # pylint: disable=g-import-not-at-top
  from siamese_jax import model  # pylint: disable=g-import-not-at-top

  config = koch.get_config("koch").model
  params = model.init(jax.random.PRNGKey(0), config)
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (batch, 105, 105, 1), dtype=np.uint8))
  half = batch // 2
  for dtype, conv in ((jnp.float32, "cpu"), (jnp.bfloat16, "cpu"), (jnp.float32, "patches"), (jnp.bfloat16, "patches")):

    def loss(p, dtype=dtype, conv=conv):
      e = model.encode(p, images, dtype, conv)
      return jnp.mean(model.pair_logits(p, e[:half], e[half:]) ** 2)

    ms = best_ms(jax.jit(jax.grad(loss)), params, repeats=repeats)
    name = f"{jnp.dtype(dtype).name} conv_impl={conv}"
    print(f"Koch gradient, {batch} images, {name}: {ms:.0f} ms ({half / ms * 1e3:.1f} pairs/s)")


def main(argv):
  del argv
  from siamese_jax import host  # pylint: disable=g-import-not-at-top

  host.tune_allocator()
  info = host.cpu_info()
  print(
    f"{info['model']}, {info['cores']} cores, extensions: {', '.join(info['extensions']) or 'none known'}", flush=True
  )
  dots_and_convs(_REPEATS.value)
  koch_layers(_BATCH.value, _REPEATS.value)
  koch_step(_BATCH.value, _REPEATS.value)


if __name__ == "__main__":
  app.run(main)
