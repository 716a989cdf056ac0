"""Users' images: every accepted kind gives the grey uint8 input of the same drawing; the rest one clear line."""

import io

from conftest import character_image
import numpy as np
from PIL import Image
import pytest

from siamese_jax import images

SIZE = 28


def drawing(h=105, w=105):
  """uint8 [h, w] Omniglot-like drawing: 0 ink, 255 paper."""
  return character_image(7, 3)[:h, :w].astype(np.uint8) * 255


def prepared(img):
  return images.prepare_images([img], SIZE)[0]


def test_every_kind_gives_the_grey_uint8_input(tmp_path):
  gray = drawing()
  want = prepared(gray)
  rgb = np.repeat(gray[:, :, None], 3, axis=2)
  path = tmp_path / "a.png"
  Image.fromarray(gray).save(path)
  kinds = {
    "uint8 [H, W, 1]": gray[:, :, None],
    "RGB": rgb,
    "RGBA opaque": np.concatenate([rgb, np.full_like(gray[:, :, None], 255)], axis=2),
    "float [0, 1]": gray / 255.0,
    "float [0, 255]": gray.astype(np.float32),
    "bool": gray > 127,
    "uint16": gray.astype(np.uint16) * 257,
    "PIL L": Image.fromarray(gray),
    "PIL 1": Image.fromarray(gray > 127),
    "PIL P": Image.fromarray(rgb).convert("P"),
    "PIL I;16": Image.fromarray(gray.astype(np.uint16) * 257),
    "path": str(path),
    "pathlib": path,
  }
  for name, img in kinds.items():
    np.testing.assert_array_equal(prepared(img), want, err_msg=name)
  # Transparent = paper: ink painted where alpha is 0 does not show.
  rgba = np.concatenate([rgb, np.full_like(gray[:, :, None], 255)], axis=2)
  rgba[:10, :, :3], rgba[:10, :, 3] = 0, 0
  np.testing.assert_array_equal(
    prepared(Image.fromarray(rgba, "RGBA")),
    prepared(np.where(np.arange(105)[:, None] < 10, 255, gray).astype(np.uint8)),
  )
  # CMYK JPEG (lossy): close to the original.
  buf = io.BytesIO()
  Image.fromarray(rgb).convert("CMYK").save(buf, format="JPEG", quality=95)
  (tmp_path / "c.jpg").write_bytes(buf.getvalue())
  assert np.abs(prepared(str(tmp_path / "c.jpg")).astype(int) - want).mean() < 8


def test_non_square_padded_with_paper_and_large_images_shrink():
  tall = drawing(105, 60)
  sq = np.full((105, 105), 255, np.uint8)
  sq[:, 22:82] = tall
  np.testing.assert_array_equal(prepared(tall), prepared(sq))
  big = np.kron(drawing(), np.ones((30, 30), np.uint8))  # 3150 x 3150
  out = prepared(big)
  assert out.shape == (SIZE, SIZE, 1) and np.abs(out.astype(int) - prepared(drawing())).mean() < 8


@pytest.mark.parametrize(
  "bad, match",
  [
    (np.zeros((5, 105, 105), np.uint8), "a batch"),
    (np.zeros((105, 105, 2), np.uint8), r"\[H, W, 4\]"),
    (np.zeros((0, 0), np.uint8), "expected an image array"),
    (np.zeros((1, 1), np.uint8), "too small"),
    (np.full((30, 30), np.nan), "NaN"),
    (np.full((30, 30), 300.0), r"\[0, 255\]"),
    (np.full((30, 30), -1), r"\[0, 255\]"),
    (np.zeros((30, 30), np.complex64), "unsupported pixel type"),
    ([[np.zeros((30, 30))]], "got a list"),
    ("/no/such/file.png", "no such image file"),
  ],
)
def test_bad_input_fails_with_one_line(bad, match):
  with pytest.raises((ValueError, FileNotFoundError), match=match) as e:
    prepared(bad)
  assert "\n" not in str(e.value)


def fuzz_inputs(tmp_path, n=300, seed=0):
  """Random malformed and odd inputs: arrays of odd dtypes, shapes and values, damaged files, PIL images."""
  rng = np.random.default_rng(seed)
  good = io.BytesIO()
  Image.fromarray(drawing()).save(good, format="PNG")
  good = good.getvalue()
  out = []
  for i in range(n):
    kind = rng.integers(0, 4)
    if kind == 0:
      shape = tuple(int(s) for s in rng.integers(0, 40, rng.integers(0, 5)))
      dtype = rng.choice(["uint8", "uint16", "int32", "float32", "float64", "bool", "complex64"])
      arr = (rng.standard_normal(shape) * rng.choice([1, 100, 1e6])).astype(dtype)
      if arr.size and dtype.startswith("float") and rng.random() < 0.3:
        arr.flat[0] = rng.choice([np.nan, np.inf])
      out.append(arr)
    elif kind == 1:
      path = tmp_path / f"f{i}.png"
      path.write_bytes(good[: rng.integers(0, len(good))] if rng.random() < 0.5 else rng.bytes(rng.integers(0, 500)))
      out.append(str(path))
    elif kind == 2:
      mode = rng.choice(["1", "L", "P", "RGB", "RGBA", "LA", "I", "F", "CMYK", "I;16"])
      size = tuple(int(s) for s in rng.integers(0, 50, 2))
      out.append(Image.new(mode, size))
    else:
      odd = [None, 3, "", b"bytes", [1, 2, 3], {"a": 1}, [[0, 1], [2]]]
      out.append(odd[rng.integers(0, len(odd))])
  return out


def test_fuzz_gives_an_image_or_one_clear_line(tmp_path):
  for img in fuzz_inputs(tmp_path):
    try:
      out = prepared(img)
    except (ValueError, FileNotFoundError) as e:
      assert str(e) and "\n" not in str(e), repr(e)
      continue
    assert out.shape == (SIZE, SIZE, 1) and out.dtype == np.uint8


def test_large_images_are_reduced_in_strips_like_the_image_shrunk_beforehand(tmp_path, monkeypatch):
  monkeypatch.setattr(images, "MAX_SIDE", 64)
  monkeypatch.setattr(images, "STRIP_PIXELS", 5000)  # many strips, some ragged
  ink = 255 - np.kron(drawing(), np.ones((6, 6), np.uint8))  # 630 x 630 alpha: ink opaque black, paper clear
  rgba = np.zeros(ink.shape + (4,), np.uint8)
  rgba[..., 3] = ink
  Image.fromarray(rgba, "RGBA").save(tmp_path / "big.png")
  got = images.to_gray_uint8(str(tmp_path / "big.png"))
  assert got.shape == (63, 63)  # a box factor of 10
  want = np.asarray(Image.fromarray(255 - ink).resize((63, 63), Image.Resampling.BOX))
  assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
  np.testing.assert_array_equal(images.to_gray_uint8(rgba), got)  # arrays take the same path as files
  with Image.open(tmp_path / "big.png") as img:
    np.testing.assert_array_equal(images.to_gray_uint8(img), got)


def test_images_over_the_pixel_limit_are_refused_before_decoding(tmp_path, monkeypatch):
  Image.fromarray(drawing()).save(tmp_path / "d.png")
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100)
  with pytest.raises(ValueError, match=r"is 105x105 = 11,025 pixels, over the limit of 10,000") as e:
    images.to_gray_uint8(str(tmp_path / "d.png"))
  assert "\n" not in str(e.value)


def test_rgb_intake_keeps_colour_and_puts_transparency_on_white():
  from siamese_jax import images

  rgb = np.full((50, 80, 3), 255, np.uint8)
  rgb[10:30, 20:40] = [255, 0, 0]
  x = images.prepare_images([rgb], 28, channels=3)
  assert x.shape == (1, 28, 28, 3) and tuple(x[0, 14, 10]) == (255, 0, 0) and tuple(x[0, 0, 0]) == (255, 255, 255)
  grey = images.prepare_images([rgb[..., 1]], 28, channels=3)
  assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
  clear = np.zeros((40, 40, 4), np.uint8)  # fully transparent black: white paper
  assert (images.prepare_images([clear], 28, channels=3) == 255).all()
  big = images.squared(np.zeros((3000, 2000, 3), np.uint8), 3)  # reduced by 3, padded to a square
  assert big.shape == (1000, 1000, 3)
  as_grey = images.prepare_images([rgb], 28)
  assert as_grey.shape == (1, 28, 28, 1)


def test_a_list_of_mixed_sizes_prepares_as_each_image_alone():
  """Images resized together (grouped by size, in chunks) give exactly what each gives alone."""
  from siamese_jax import images

  rng = np.random.default_rng(0)
  batch = [rng.integers(0, 256, (h, w), np.uint8) for h, w in [(30, 40), (64, 64), (30, 40), (200, 90)] * 5]
  together = images.prepare_images(batch, 28)
  alone = np.concatenate([images.prepare_images([img], 28) for img in batch])
  np.testing.assert_array_equal(together, alone)
