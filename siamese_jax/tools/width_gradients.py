"""Are the encoder's gradients under `jax.jit` right at these widths on this backend?

For each width (the `:cpu` preset's network otherwise: 28x28, 3x3 convs, group norm, max-pool),
compares the gradient of a fixed linear read-out of the embeddings of 128 random binary images
(ink-like, with ties in every pool window) under `jax.jit` with op-by-op autodiff under
`jax.disable_jit()`, and prints each layer's relative error (nan: a non-finite gradient). XLA:CPU in
jax 0.10.2 gets some widths wrong (80, 96, 160, 224 channels of a pooled layer; docs/results.md).

  python -m siamese_jax.tools.width_gradients --features="64,128,128;96,192,192"
"""

from __future__ import annotations

from absl import app, flags

TOLERANCE = 1e-4  # op by op and jit agree to about 2e-7 where the compiled gradient is right


def layer_errors(model_config, num_images: int = 128) -> dict[str, float]:
  """{layer: |g_jit - g_op_by_op| / |g_op_by_op|} of the encoder's weights (the head is not in it)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from siamese_jax import model  # pylint: disable=g-import-not-at-top

  params = model.init(jax.random.PRNGKey(0), model_config)
  size = model_config.image_size
  x = (jax.random.uniform(jax.random.PRNGKey(1), (num_images, size, size, 1)) > 0.8).astype(jnp.float32)
  loss = lambda p: jnp.sum(model.encode(p, x, model.spec(model_config)) * jnp.arange(model_config.embed_dim))
  got = jax.jit(jax.grad(loss))(params)
  with jax.disable_jit():
    ref = jax.grad(loss)(params)
  return {
    k: float(jnp.linalg.norm(got[k]["w"] - ref[k]["w"]) / jnp.linalg.norm(ref[k]["w"])) for k in params if k != "head"
  }


def main(_):
  import jax  # pylint: disable=g-import-not-at-top

  from configs import koch  # pylint: disable=g-import-not-at-top

  print(f"backend {jax.default_backend()}, jax {jax.__version__}; relative error of jit against op by op")
  for spec in flags.FLAGS.features.split(";"):
    config = koch.get_config("cpu").model
    try:
      config.features = tuple(int(w) for w in spec.split(","))
      config.kernel_sizes = (3,) * len(config.features)
      errors = layer_errors(config)
    except ValueError as e:
      raise app.UsageError(f"--features={spec!r}: {e}") from None
    verdict = "exact" if all(e < TOLERANCE for e in errors.values()) else "WRONG"
    cells = "  ".join(f"{k} {e:.1e}" for k, e in errors.items())
    print(f"features {config.features}: {verdict}  {cells}", flush=True)


if __name__ == "__main__":
  flags.DEFINE_string("features", "64,128,128;96,192,192", "Widths to check: comma-separated, ';' between networks.")
  app.run(main)
