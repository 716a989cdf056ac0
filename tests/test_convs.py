"""Convolution formulations: equal values and gradients, per-layer choices, backends."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import koch
from siamese_jax import convs, model


@pytest.mark.parametrize("impl", ["conv_patches", "conv_direct_cpu", "conv_dft", "conv_cpu"])
@pytest.mark.parametrize(
  "b,h,w,c_in,c_out,k",
  [(3, 20, 20, 1, 8, 5), (2, 15, 15, 6, 4, 3), (2, 12, 12, 3, 5, 4), (2, 24, 25, 16, 32, 7), (2, 11, 9, 3, 2, 2)],
)
def test_conv_impls_match_lax_conv_values_and_gradients(impl, b, h, w, c_in, c_out, k):
  k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
  x = jax.random.normal(k1, (b, h, w, c_in))
  kernel = jax.random.normal(k2, (k, k, c_in, c_out))
  dy = jax.random.normal(k3, (b, h - k + 1, w - k + 1, c_out))
  y_ref, vjp_ref = jax.vjp(convs.conv_xla, x, kernel)
  y, vjp = jax.vjp(getattr(convs, impl), x, kernel)
  for got, want in zip((y, *vjp(dy)), (y_ref, *vjp_ref(dy))):
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-5 * float(jnp.max(jnp.abs(want))))


def test_cpu_conv_takes_the_dft_where_it_pays():
  koch_layers = [
    ((64, 105, 105, 1), (10, 10, 1, 64)),
    ((64, 48, 48, 64), (7, 7, 64, 128)),
    ((64, 21, 21, 128), (4, 4, 128, 128)),
    ((64, 9, 9, 128), (4, 4, 128, 256)),
  ]
  cpu_layers = [
    ((128, 28, 28, 1), (3, 3, 1, 64)),
    ((128, 13, 13, 64), (3, 3, 64, 128)),
    ((128, 5, 5, 128), (3, 3, 128, 128)),
  ]
  assert [convs.dft_pays(*s) for s in koch_layers[:3]] == [False, True, True]  # one input channel: direct
  assert [convs.cpu_formulation(*s) for s in koch_layers] == ["direct", "dft", "dft", "patches"]
  assert [convs.cpu_formulation(*s) for s in cpu_layers] == ["patches"] * 3  # small im2col blocks
  assert not convs.dft_pays((8, 16, 16, 8), (3, 3, 8, 8))  # small kernel, few channels: direct
  assert convs.dft_pays((2, 24, 25, 16), (7, 7, 16, 32))  # the DFT case of the equality test above


def test_dft_conv_in_bfloat16_returns_bfloat16():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 10, 10, 4), jnp.bfloat16)
  w = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 4, 6), jnp.bfloat16)
  y, vjp = jax.vjp(convs.conv_dft, x, w)
  dx, dw = vjp(jnp.ones_like(y))
  assert (y.dtype, dx.dtype, dw.dtype) == (jnp.bfloat16,) * 3
  ref = convs.conv_xla(x.astype(jnp.float32), w.astype(jnp.float32))
  np.testing.assert_allclose(y.astype(jnp.float32), ref, rtol=0.02, atol=0.02 * float(jnp.max(jnp.abs(ref))))


def test_cpu_weight_gradient_in_row_blocks(monkeypatch):
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 12, 12, 3))
  dy = jax.random.normal(jax.random.PRNGKey(1), (2, 8, 8, 5))
  whole = convs._weight_grad_gemm(x, dy, 5, 5)
  monkeypatch.setattr(convs, "_PATCH_BLOCK_BYTES", 1)  # one kernel row per block
  rows = convs._weight_grad_gemm(x, dy, 5, 5)
  _, vjp = jax.vjp(lambda w: convs.conv_xla(x, w), jnp.zeros((5, 5, 3, 5)))
  np.testing.assert_allclose(rows, whole, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(rows, vjp(dy)[0], rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_encode_gradients_equal_across_conv_impls():
  cfg = koch.get_config("smoke").model
  params = model.init(jax.random.PRNGKey(0), cfg)
  x = jax.random.uniform(jax.random.PRNGKey(1), (4, 32, 32, 1))
  loss = lambda p, impl: jnp.sum(model.encode(p, x, model.spec(cfg), conv_impl=impl) ** 2)
  ref = jax.grad(loss)(params, "xla")
  for impl in ("cpu", "dft", "patches", "auto"):
    got = jax.grad(loss)(params, impl)
    for g, r in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(ref)):
      np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-6)


def test_auto_conv_impl_by_backend():
  assert convs.conv_impl_for_backend("auto", "cpu") is convs.conv_cpu
  assert convs.conv_impl_for_backend("auto", "gpu") is convs.conv_xla
  assert convs.conv_impl_for_backend("auto", "tpu") is convs.conv_xla
  assert convs.conv_impl_for_backend("patches", "gpu") is convs.conv_patches
  with pytest.raises(ValueError, match="model.conv_impl='winograd'"):
    convs.conv_impl_for_backend("winograd")
