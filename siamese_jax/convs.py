"""Valid 2-D convolutions (NHWC x HWIO -> NHWC), one function per formulation.

All compute `lax.conv_general_dilated`'s values and gradients (tests check it to
float tolerance); they differ in speed per backend. `model.conv_impl` picks one:

  xla      lax.conv_general_dilated: cuDNN / TPU convolutions, the plain path.
  patches  im2col and one dot.
  cpu      per layer, the fastest on XLA:CPU of `conv_patches`, `conv_dft` and
           `conv_direct_cpu` (`patches_pay`, `dft_pays`); what "auto" picks on the CPU backend.
  dft      `conv_dft` everywhere.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def conv_xla(x: jax.Array, w: jax.Array) -> jax.Array:
  """Valid 2-D convolution, NHWC x HWIO -> NHWC, by lax.conv_general_dilated."""
  return jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


# Bytes of one im2col block in `conv_direct_cpu`'s weight gradient; larger blocks are split by kernel row.
_PATCH_BLOCK_BYTES = 256 << 20


def _patches(x: jax.Array, rows: range, k_w: int, h: int, w: int) -> jax.Array:
  """im2col of kernel rows `rows`: [B*h*w, len(rows)*k_w*C], in (i, j, c) order."""
  cols = [x[:, i : i + h, j : j + w, :] for i in rows for j in range(k_w)]
  return jnp.concatenate(cols, axis=-1).reshape(-1, len(cols) * x.shape[-1])


def conv_patches(x: jax.Array, w: jax.Array) -> jax.Array:
  """The same convolution as patches (k*k shifted slices) times a matrix: one big dot.

  XLA's CPU convolutions (their backward passes above all) are far slower than
  its matrix multiply; this form turns the work into dots.
  """
  k_h, k_w, c_in, c_out = w.shape
  b, h, w_out = x.shape[0], x.shape[1] - k_h + 1, x.shape[2] - k_w + 1
  patches = _patches(x, range(k_h), k_w, h, w_out)  # [B*H'*W', k*k*C_in], (i, j, c) order as w.
  y = jnp.dot(patches, w.reshape(k_h * k_w * c_in, c_out), preferred_element_type=x.dtype)
  return y.reshape(b, h, w_out, c_out)


def _weight_grad_gemm(x: jax.Array, dy: jax.Array, k_h: int, k_w: int) -> jax.Array:
  """dL/dw of a VALID conv as im2col-transpose times dy: x [B,H,W,C], dy [B,H',W',O] -> [k_h,k_w,C,O].

  The patches are built for a block of kernel rows at a time so that no block
  exceeds `_PATCH_BLOCK_BYTES` (one row at least).
  """
  b, h, w, c_out = dy.shape
  dy2 = dy.reshape(-1, c_out)
  if x.shape[-1] == 1:
    # One input channel: each kernel row's patches tap-major, [k_w, B*H'*W'] (every tap
    # one contiguous copy rather than single floats interleaved): Koch layer 1 258 -> 148 ms.
    rows = [jnp.stack([x[:, i : i + h, j : j + w, 0] for j in range(k_w)]).reshape(k_w, -1) for i in range(k_h)]
    rows = [jnp.dot(r, dy2, preferred_element_type=jnp.float32) for r in rows]
    return jnp.stack(rows).reshape(k_h, k_w, 1, c_out)
  row_bytes = b * h * w * k_w * x.shape[-1] * x.dtype.itemsize
  rows_per_block = max(1, min(k_h, _PATCH_BLOCK_BYTES // max(row_bytes, 1)))
  blocks = []
  for start in range(0, k_h, rows_per_block):
    p = _patches(x, range(start, min(start + rows_per_block, k_h)), k_w, h, w)
    blocks.append(jnp.dot(p.T, dy2, preferred_element_type=jnp.float32))
  return jnp.concatenate(blocks, axis=0).reshape(k_h, k_w, x.shape[-1], c_out)


def conv_pad_crop(x: jax.Array, w: jax.Array) -> jax.Array:
  """`conv_xla`'s values as a conv padded by one pixel whose border is cropped.

  XLA:CPU runs padded convolutions on a much faster path than VALID ones (Koch
  layer 2, 64 images: 0.26 s against 2.0 s), so the extra border pays for itself
  many times over. Only worth it with more than one input channel.
  """
  y = jax.lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return y[:, 1:-1, 1:-1, :]


@jax.custom_vjp
def conv_direct_cpu(x: jax.Array, w: jax.Array) -> jax.Array:
  """`conv_xla`'s values and gradients, in the formulation that is fast on XLA:CPU.

  Forward and input gradient: `conv_pad_crop` (plain `conv_xla` for one input
  channel). Weight gradient: im2col blocks times dy (`_weight_grad_gemm`), where
  XLA's own (a convolution with a window the size of the image) runs at a fifth
  of matmul speed.
  """
  return _conv_cpu_values(x, w)


def _conv_cpu_values(x, w):
  return conv_xla(x, w) if x.shape[-1] == 1 else conv_pad_crop(x, w)


def _conv_cpu_fwd(x, w):
  return _conv_cpu_values(x, w), (x, w)


def _conv_cpu_bwd(res, dy):
  x, w = res
  _, vjp_x = jax.vjp(lambda x_: _conv_cpu_values(x_, w), x)
  (dx,) = vjp_x(dy)
  return dx, _weight_grad_gemm(x, dy, w.shape[0], w.shape[1]).astype(w.dtype)


conv_direct_cpu.defvjp(_conv_cpu_fwd, _conv_cpu_bwd)


# -- Convolution by discrete Fourier transforms written as matmuls. --------------
#
# On an H x W input a VALID k_h x k_w correlation is exact as a circular one of
# size H x W: output (i, j) reads x at (i + a, j + b) <= (H - 1, W - 1), so nothing
# wraps; likewise the input gradient (a full convolution of dy, zero-padded) and
# the weight gradient (a correlation of x with dy). Each becomes, per frequency,
# a small complex matrix product over channels (forward: over C_in; input
# gradient: over C_out; weight gradient: over the batch). The transforms are
# dense DFT matrices (not FFTs) so that they are matmuls as well and the inverse
# computes only the output pixels wanted (k_h x k_w of them for the weight
# gradient). Spectra are kept as (real, imaginary) float32 pairs laid out
# [frequencies, batch, channels], the layout XLA:CPU's batched dot likes best.


def _dft_basis(n_in: int, n: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
  """cos and sin of 2 pi t u / n for t < n_in, u < n_out: two float32 [n_in, n_out]."""
  angle = 2.0 * np.pi * (np.outer(np.arange(n_in), np.arange(n_out)) % n) / n
  return np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)


def spectrum(a: jax.Array, size: tuple[int, int]) -> tuple[jax.Array, jax.Array]:
  """Half 2-D DFT of real maps a [B, h, w, C], zero-padded to size (H, W).

  Returns (real, imaginary), each [H * (W // 2 + 1), B, C] (frequency-major).
  """
  b, h, w, c = a.shape
  big_h, big_w = size
  cos_w, sin_w = _dft_basis(w, big_w, big_w // 2 + 1)
  cos_h, sin_h = _dft_basis(h, big_h, big_h)
  rows_re = jnp.einsum("bhwc,wf->hfbc", a, cos_w)  # along W; the sign of sin is folded below
  rows_im = jnp.einsum("bhwc,wf->hfbc", a, sin_w)  # = -Im
  along_h = lambda t, m: jnp.einsum("hfbc,hu->ufbc", t, m)
  re = along_h(rows_re, cos_h) - along_h(rows_im, sin_h)
  im = -along_h(rows_im, cos_h) - along_h(rows_re, sin_h)
  return re.reshape(-1, b, c), im.reshape(-1, b, c)


def inverse_spectrum(re: jax.Array, im: jax.Array, size: tuple[int, int], out: tuple[int, int]) -> jax.Array:
  """The top-left out = (h, w) pixels of the real inverse of a half spectrum.

  re, im: [H * (W // 2 + 1), B, C] as from `spectrum` with the same size -> [B, h, w, C].
  """
  big_h, big_w = size
  n_freq = big_w // 2 + 1
  b, c = re.shape[1:]
  re, im = re.reshape(big_h, n_freq, b, c), im.reshape(big_h, n_freq, b, c)
  cos_h, sin_h = _dft_basis(big_h, big_h, out[0])
  along_h = lambda t, m: jnp.einsum("ufbc,ur->rfbc", t, m)
  z_re = along_h(re, cos_h) - along_h(im, sin_h)
  z_im = along_h(im, cos_h) + along_h(re, sin_h)
  # Frequencies 1 .. W/2 - 1 stand for their mirror images too (Hermitian symmetry).
  weight = np.full((n_freq, 1), 2.0, np.float32)
  weight[0] = 1.0
  if big_w % 2 == 0:
    weight[-1] = 1.0
  cos_w, sin_w = _dft_basis(n_freq, big_w, out[1])
  scale = weight / (big_h * big_w)
  along_w = lambda t, m: jnp.einsum("rfbc,fs->brsc", t, m)
  return along_w(z_re, cos_w * scale) - along_w(z_im, sin_w * scale)


def _cmul(a, b, eq: str, conj_b: bool):
  """Complex a x b (or a x conj(b)) contracted by einsum eq; a, b are (re, im) pairs."""
  mm = lambda p, q: jnp.einsum(eq, p, q)
  s = -1.0 if conj_b else 1.0
  return mm(a[0], b[0]) - s * mm(a[1], b[1]), mm(a[1], b[0]) + s * mm(a[0], b[1])


def _weight_spectrum(w: jax.Array, size) -> tuple[jax.Array, jax.Array]:
  return spectrum(jnp.transpose(w, (2, 0, 1, 3)), size)  # [P, C_in, C_out]


def _conv_dft_fwd(x, w):
  size, (k_h, k_w) = x.shape[1:3], w.shape[:2]
  x_hat, w_hat = spectrum(x, size), _weight_spectrum(w, size)
  y_hat = _cmul(x_hat, w_hat, "pbc,pco->pbo", conj_b=True)  # correlation
  y = inverse_spectrum(*y_hat, size, (size[0] - k_h + 1, size[1] - k_w + 1))
  return y, (x_hat, w_hat, size, (k_h, k_w))


def _conv_dft_bwd(res, dy):
  x_hat, w_hat, size, kernel = res
  dy_hat = spectrum(dy, size)
  dx = inverse_spectrum(*_cmul(dy_hat, w_hat, "pbo,pco->pbc", conj_b=False), size, size)
  dw_hat = _cmul(x_hat, dy_hat, "pbc,pbo->pco", conj_b=True)
  dw = jnp.transpose(inverse_spectrum(*dw_hat, size, kernel), (1, 2, 0, 3))
  return dx, dw


@jax.custom_vjp
def _conv_dft_f32(x, w):
  return _conv_dft_fwd(x, w)[0]


_conv_dft_f32.defvjp(_conv_dft_fwd, _conv_dft_bwd)


def conv_dft(x: jax.Array, w: jax.Array) -> jax.Array:
  """`conv_xla`'s values and gradients through 2-D DFTs of size H x W (computed in float32).

  Work per image: transforms O(H W (H + W) C) and per-frequency products
  O(H W C_in C_out / 2) instead of O(H W k^2 C_in C_out): for Koch's 7x7 layer
  on 48x48, `dft_flops` is 0.14 of `direct_flops`.
  """
  return _conv_dft_f32(x.astype(jnp.float32), w.astype(jnp.float32)).astype(x.dtype)


# DFT FLOPs run about this many times slower than direct-convolution FLOPs on XLA:CPU
# (small batched dots vs large padded convolutions); `dft_pays` weighs them so.
DFT_FLOP_COST = 2.0


def direct_flops(x_shape, w_shape) -> float:
  """FLOPs of one direct VALID convolution (forward)."""
  b, h, w, _ = x_shape
  k_h, k_w, c_in, c_out = w_shape
  return 2.0 * b * (h - k_h + 1) * (w - k_w + 1) * k_h * k_w * c_in * c_out


def dft_flops(x_shape, w_shape) -> float:
  """FLOPs of `conv_dft`'s forward: transform x, per-frequency products, inverse of y."""
  b, h, w, _ = x_shape
  k_h, k_w, c_in, c_out = w_shape
  n_freq = w // 2 + 1
  transform = lambda maps, rows, cols: maps * (rows * cols * 2 * n_freq * 2 + 4 * rows * h * n_freq * 2)
  inverse = lambda maps, rows, cols: maps * (4 * h * rows * n_freq * 2 + 2 * rows * n_freq * cols * 2)
  products = 4 * 2 * h * n_freq * b * c_in * c_out
  return transform(b * c_in, h, w) + products + inverse(b * c_out, h - k_h + 1, w - k_w + 1)


def dft_pays(x_shape, w_shape) -> bool:
  """Whether `conv_dft` beats `conv_direct_cpu` for this layer on XLA:CPU (by weighted FLOPs)."""
  return x_shape[-1] > 1 and DFT_FLOP_COST * dft_flops(x_shape, w_shape) < direct_flops(x_shape, w_shape)


# `conv_patches` is used on XLA:CPU where one image's im2col block is at most this many bytes.
PATCHES_MAX_BYTES_PER_IMAGE = 1 << 20


def patches_pay(x_shape, w_shape) -> bool:
  """Whether `conv_patches` beats the other formulations for this layer on XLA:CPU.

  Measured forward + backward, AMD EPYC (AVX2, 2 cores), 64 images: it wins where an
  image's im2col block is small (`:cpu` layers 24 KB-279 KB: 4.8 vs 13.9, 41.7 vs
  47.1, 8.0 vs 12.2 ms; Koch's last layer, 295 KB: 74.7 vs 81.1 ms) and loses on
  Koch's 4x4 layer at 21x21 (2.7 MB: 616 vs 271 ms). Koch's first layer (3.7 MB) is
  faster as patches (685 vs 909 ms) but would hold 236 MB of patches; it stays direct.
  """
  _, h, w, c_in = x_shape
  k_h, k_w = w_shape[:2]
  return (h - k_h + 1) * (w - k_w + 1) * k_h * k_w * c_in * 4 <= PATCHES_MAX_BYTES_PER_IMAGE


def conv_cpu(x: jax.Array, w: jax.Array) -> jax.Array:
  """Per layer (by static shapes): `conv_patches` where it pays, else `conv_dft` where
  that pays, else `conv_direct_cpu`.

  Computes in float32 whatever the input dtype (XLA:CPU's bfloat16 convolutions
  are slower than its float32 ones) and returns the input dtype.
  """
  conv = CPU_FORMULATIONS[cpu_formulation(x.shape, w.shape)]
  return conv(x.astype(jnp.float32), w.astype(jnp.float32)).astype(x.dtype)


def cpu_formulation(x_shape, w_shape) -> str:
  """The name in `CPU_FORMULATIONS` that `conv_cpu` uses for a layer of these static shapes."""
  if patches_pay(x_shape, w_shape):
    return "patches"
  return "dft" if dft_pays(x_shape, w_shape) else "direct"


CPU_FORMULATIONS = {"patches": conv_patches, "dft": conv_dft, "direct": conv_direct_cpu}


CONV_IMPLS = {"xla": conv_xla, "patches": conv_patches, "cpu": conv_cpu, "dft": conv_dft}


def conv_impl_for_backend(name: str = "auto", backend: str | None = None):
  """The convolution function for `name`; "auto" is "cpu" on the CPU backend and XLA's
  own convolution on accelerators (cuDNN, TPU), where that is the fast path."""
  if name == "auto":
    name = "cpu" if (backend or jax.default_backend()) == "cpu" else "xla"
  if name not in CONV_IMPLS:
    raise ValueError(f"model.conv_impl={name!r}; choose from {['auto', *CONV_IMPLS]}")
  return CONV_IMPLS[name]
