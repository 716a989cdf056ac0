"""Each convolution formulation timed per layer of a preset's network, on this CPU and jax version.

For every conv layer of the network (its input shape at `--images` images), the forward and
backward pass (value and gradient of a fixed read-out, under jit) of XLA's convolution and of each
of `convs.CPU_FORMULATIONS`, the median of `--repeats` timed blocks; and which one
`convs.cpu_formulation` picks (`conv_impl=cpu`, the default on a CPU). Run it under each jax
version (each Python's venv) to see whether the choice still holds:

  python -m siamese_jax.tools.conv_layers --presets=koch,cpu
"""

from __future__ import annotations

import statistics

from absl import app, flags


def layer_shapes(model_config, images: int) -> list[tuple[tuple, tuple]]:
  """(input [B, H, W, C_in], kernel [k, k, C_in, C_out]) of every conv layer of a network."""
  side, c_in, out = model_config.image_size, 1, []
  for i, (c, k) in enumerate(zip(model_config.features, model_config.kernel_sizes)):
    out.append(((images, side, side, c_in), (k, k, c_in, c)))
    side, c_in = side - k + 1, c
    if i < len(model_config.features) - 1:
      side //= 2
  return out


def time_layer(conv, x_shape, w_shape, repeats: int, min_block_s: float) -> float:
  """Median seconds of one jitted forward + backward of `conv` at these shapes."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from siamese_jax.tools import timing  # pylint: disable=g-import-not-at-top

  kx, kw, kr = jax.random.split(jax.random.PRNGKey(0), 3)
  x, w = jax.random.normal(kx, x_shape), 0.1 * jax.random.normal(kw, w_shape)
  r = jax.random.normal(kr, conv(x, w).shape)
  step = jax.jit(jax.value_and_grad(lambda x, w: jnp.sum(conv(x, w) * r), argnums=(0, 1)))
  return statistics.median(timing.block_timings(lambda: step(x, w), repeats, 1, jax.block_until_ready, min_block_s))


def table(presets, images: int, repeats: int, min_block_s: float, log=print) -> str:
  """Markdown: per preset and layer, ms of each formulation and the one `conv_impl=cpu` picks."""
  import jax  # pylint: disable=g-import-not-at-top

  from configs import koch  # pylint: disable=g-import-not-at-top
  from siamese_jax import convs  # pylint: disable=g-import-not-at-top

  names = ["xla", *convs.CPU_FORMULATIONS]
  lines = [
    f"jax {jax.__version__}, {images} images a layer; forward + backward, ms (median of {repeats})",
    "",
    "| preset | layer | input | kernel | " + " | ".join(names) + " | picked | fastest |",
    "| --- | --- | --- | --- |" + " ---: |" * len(names) + " --- | --- |",
  ]
  for preset in presets:
    for i, (xs, ws) in enumerate(layer_shapes(koch.get_config(preset).model, images)):
      funcs = {"xla": convs.conv_xla, **convs.CPU_FORMULATIONS}
      ms = {n: 1000 * time_layer(funcs[n], xs, ws, repeats, min_block_s) for n in names}
      picked, fastest = convs.cpu_formulation(xs, ws), min(ms, key=ms.get)
      row = f"| {preset} | conv{i} | {xs} | {ws} | " + " | ".join(f"{ms[n]:.2f}" for n in names)
      lines.append(row + f" | {picked} | {fastest} |")
      log(lines[-1])
  return "\n".join(lines)


def main(argv):
  del argv
  f = flags.FLAGS
  print(table(f.presets, f.images, f.repeats, f.min_block_s, log=lambda s: None))


if __name__ == "__main__":  # flags defined here, so that tests can import this module beside other tools
  flags.DEFINE_list("presets", ["koch", "cpu"], "Networks of these presets (configs/koch.py).")
  flags.DEFINE_integer("images", 64, "Images a layer sees (a step's batch: 32 pairs = 64 images).")
  flags.DEFINE_integer("repeats", 3, "Timed blocks; the median is reported.")
  flags.DEFINE_float("min_block_s", 0.5, "Each block runs enough calls to last about this long.")
  app.run(main)
