"""Users' images to the network's input: any common file or array -> uint8 [S, S, 1], 0 ink, 255 paper.

Accepted: file paths, PIL images (1, L, P, RGB, RGBA, LA, PA, I;16, I, F, CMYK, ...),
and arrays [H, W], [H, W, 1], [H, W, 3] (RGB) or [H, W, 4] (RGBA) of dtype bool
(True = paper), uint8, uint16, or float in [0, 1] or [0, 255]. As in Omniglot, ink
is dark on light paper. Colour becomes grey by the ITU-R 601 luma (PIL's own
weights); transparent pixels become paper; a non-square image is padded with paper
to a centred square; then the square is resized exactly as the training images
(`loader.resize_images`). Anything else raises ValueError with one line.

Memory stays bounded for any size: an image whose longer side exceeds MAX_SIDE is reduced by an
integer box factor strip by strip while it is turned grey (no full-size float copy; JPEGs are decoded
at a reduced scale), and a file over PIL's decompression-bomb threshold is refused before decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
import os
from typing import Any
import warnings

import numpy as np

from siamese_jax.omniglot import loader

MIN_SIDE = 8  # smaller images carry no drawing worth scoring
MAX_SIDE = 1024  # larger images are reduced to at most this (box filter) to bound memory and time
STRIP_PIXELS = 1 << 18  # pixels turned grey at a time in a large image (about 10 MB of floats)
_LUMA = np.array([0.299, 0.587, 0.114])


def to_gray_uint8(image: Any) -> np.ndarray:
  """One image of any accepted kind as uint8 [H, W] (0 ink, 255 paper), before squaring."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  if isinstance(image, (str, os.PathLike)):
    image = _open(os.fspath(image))
  if isinstance(image, Image.Image):
    if max(image.size) > MAX_SIDE and image.mode in _STRIP_MODES and "transparency" not in image.info:
      return _checked_size(_reduced_pil(image))
    image = _from_pil(image)
  if isinstance(image, (list, tuple)):
    raise ValueError("expected one image, got a list (pass images as a list only where a list of images is asked)")
  arr = np.asarray(image)
  if arr.dtype == object or arr.size == 0:
    raise ValueError(f"expected an image array, got {arr.dtype} of shape {arr.shape}")
  if arr.ndim == 3 and arr.shape[-1] == 1:
    arr = arr[..., 0]
  if arr.ndim == 4 or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
    raise ValueError(
      f"expected one image [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got shape {arr.shape}"
      " (a batch? pass a list of images)"
    )
  if arr.ndim != 2 and arr.ndim != 3:
    raise ValueError(f"expected one image [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got shape {arr.shape}")
  divisor = _unit_divisor(arr)
  factor = _factor(arr.shape[:2])
  return _checked_size(_reduce_rows(lambda y0, y1: _gray(arr[y0:y1], divisor), arr.shape[0], arr.shape[1], factor))


def _checked_size(gray: np.ndarray) -> np.ndarray:
  if min(gray.shape[:2]) < MIN_SIDE:
    raise ValueError(f"image of {gray.shape[0]}x{gray.shape[1]} pixels is too small (at least {MIN_SIDE}x{MIN_SIDE})")
  return gray


def _gray(arr: np.ndarray, divisor: float) -> np.ndarray:
  """Rows of an image (values / divisor in [0, 1]) as float64 grey in [0, 1] (transparent = paper, colour by luma)."""
  gray = arr.astype(np.float64) / divisor
  if gray.ndim == 3:
    rgb, alpha = gray[..., :3], (gray[..., 3:4] if gray.shape[-1] == 4 else 1.0)
    gray = (alpha * rgb + (1.0 - alpha)) @ _LUMA
  return gray


def _factor(shape) -> int:
  """The box factor that brings the longer side to at most MAX_SIDE (1: none)."""
  return max(1, -(-max(shape) // MAX_SIDE))


def _reduce_rows(rows, h: int, w: int, factor: int) -> np.ndarray:
  """uint8 grey [ceil(h / f), ceil(w / f)]: `rows(y0, y1)` (float grey [y1 - y0, w]) box-averaged over
  f x f blocks (the last ones over what they hold), a strip of about STRIP_PIXELS pixels at a time."""
  if factor == 1:
    return np.clip(np.round(rows(0, h) * 255.0), 0, 255).astype(np.uint8)
  out = np.empty((-(-h // factor), -(-w // factor)), np.uint8)
  step = factor * max(1, STRIP_PIXELS // (factor * w))
  cols = np.arange(0, w, factor)
  for y0 in range(0, h, step):
    g = rows(y0, min(y0 + step, h))
    starts = np.arange(0, g.shape[0], factor)
    block_rows = np.add.reduceat(g, starts, axis=0) / np.diff(np.append(starts, g.shape[0]))[:, None]
    blocks = np.add.reduceat(block_rows, cols, axis=1) / np.diff(np.append(cols, w))[None, :]
    out[y0 // factor : y0 // factor + len(starts)] = np.clip(np.round(blocks * 255.0), 0, 255)
  return out


# PIL modes reduced strip by strip (others are converted whole: rare at sizes that matter).
_STRIP_MODES = ("1", "L", "LA", "RGB", "RGBA")


def _reduced_pil(img) -> np.ndarray:
  """A large PIL image in a `_STRIP_MODES` mode as reduced uint8 grey, one strip of rows at a time."""
  w, h = img.size
  factor = _factor((h, w))

  def rows(y0, y1):
    strip = img.crop((0, y0, w, y1))
    if strip.mode == "1":
      return np.asarray(strip, bool).astype(np.float64)
    arr = np.asarray(strip.convert("RGBA") if strip.mode == "LA" else strip)
    return _gray(arr, 255.0)

  return _reduce_rows(rows, h, w, factor)


def _open(path: str):
  from PIL import Image  # pylint: disable=g-import-not-at-top

  if not os.path.exists(path):
    raise FileNotFoundError(f"no such image file: {path}")
  try:
    with warnings.catch_warnings():  # the size is checked below, with a clearer line than PIL's warning
      warnings.simplefilter("ignore", Image.DecompressionBombWarning)
      img = Image.open(path)
    with img:
      w, h = img.size  # read from the header: nothing is decoded yet
      if w * h > Image.MAX_IMAGE_PIXELS:
        raise ValueError(
          f"{path} is {w}x{h} = {w * h:,} pixels, over the limit of {Image.MAX_IMAGE_PIXELS:,}"
          " (PIL's decompression-bomb threshold); shrink it first"
        )
      if img.format == "JPEG" and max(w, h) > 2 * MAX_SIDE:
        img.draft(img.mode, (MAX_SIDE, MAX_SIDE))  # decoded at 1/2, 1/4 or 1/8 scale, still >= MAX_SIDE
      img.load()
      return img  # decoded: usable once the file is closed
  except ValueError:
    raise
  except Image.DecompressionBombError:
    raise ValueError(f"{path} is too large to read safely (over {Image.MAX_IMAGE_PIXELS} pixels)") from None
  except Exception as e:  # noqa: BLE001 - PIL raises many types for a damaged file.
    raise ValueError(f"cannot read {path} as an image ({type(e).__name__}: {str(e)[:120]})") from None


def _from_pil(img) -> np.ndarray:
  """A PIL image as an array this module accepts (transparency kept as alpha, 16-bit kept)."""
  if img.mode in ("I;16", "I;16B", "I;16L"):
    return np.asarray(img, np.uint16)
  if img.mode in ("I", "F"):
    arr = np.asarray(img)
    return arr.astype(np.uint16) if img.mode == "I" and arr.min() >= 0 and arr.max() <= 65535 else arr
  if img.mode in ("RGBA", "LA", "PA") or (img.mode in ("P", "L", "RGB") and "transparency" in img.info):
    return np.asarray(img.convert("RGBA"))
  if img.mode == "1":
    return np.asarray(img, bool)
  return np.asarray(img.convert("L"))


def _unit_divisor(arr: np.ndarray) -> float:
  """What pixel values are divided by to lie in [0, 1], by dtype: bool, uint8, uint16, or float in
  [0, 1] / [0, 255]; ValueError for anything else."""
  if arr.dtype == bool:
    return 1.0
  if arr.dtype == np.uint8:
    return 255.0
  if arr.dtype == np.uint16:
    return 65535.0
  if np.issubdtype(arr.dtype, np.integer):
    if arr.min() < 0 or arr.max() > 255:
      raise ValueError(f"integer pixels must be in [0, 255] (or use uint16), got [{arr.min()}, {arr.max()}]")
    return 255.0
  if np.issubdtype(arr.dtype, np.floating):
    if not np.isfinite(arr).all():
      raise ValueError("image has NaN or infinite pixels")
    lo, hi = arr.min(), arr.max()
    if lo < 0 or hi > 255:
      raise ValueError(f"float pixels must be in [0, 1] or [0, 255], got [{lo:g}, {hi:g}]")
    return 1.0 if hi <= 1.0 else 255.0
  raise ValueError(f"unsupported pixel type {arr.dtype}")


def square(gray: np.ndarray) -> np.ndarray:
  """uint8 [H, W] padded with paper (255) to a centred square [S, S], S = max(H, W)."""
  h, w = gray.shape
  s = max(h, w)
  out = np.full((s, s), 255, np.uint8)
  top, left = (s - h) // 2, (s - w) // 2
  out[top : top + h, left : left + w] = gray
  return out


def _shrink(gray: np.ndarray) -> np.ndarray:
  if gray.shape[0] <= MAX_SIDE:
    return gray
  from PIL import Image  # pylint: disable=g-import-not-at-top

  return np.asarray(Image.fromarray(gray).resize((MAX_SIDE, MAX_SIDE), Image.Resampling.BOX))


def squared(image: Any, channels: int = 1) -> np.ndarray:
  """One image of any accepted kind as a paper-padded square uint8 [S, S] (grey) or [S, S, 3] (RGB,
  `channels=3`), S <= MAX_SIDE, before resizing."""
  if channels == 3:
    return _square_rgb(to_rgb_uint8(image))
  return _shrink(square(to_gray_uint8(image)))


def to_rgb_uint8(image: Any) -> np.ndarray:
  """One image of any accepted kind as uint8 [H, W, 3] on white (transparency becomes white), its
  longer side reduced to at most MAX_SIDE by an integer box factor (PIL's own, in 8 bits)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  if isinstance(image, (str, os.PathLike)):
    image = _open(os.fspath(image))
  if not isinstance(image, Image.Image):
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
      arr = np.round(arr.astype(np.float64) * (255.0 / _unit_divisor(arr))).astype(np.uint8)
      image = Image.fromarray(arr, "RGBA" if arr.shape[-1] == 4 else "RGB")
    else:
      return np.repeat(to_gray_uint8(arr)[..., None], 3, axis=-1)  # grey: the same in each channel
  if image.mode not in ("RGB", "RGBA", "L", "LA"):
    image = image.convert(
      "RGBA" if image.mode in ("P", "PA") and "transparency" in image.info or image.mode == "PA" else "RGB"
    )
  factor = _factor((image.height, image.width))
  if factor > 1:
    image = image.reduce(factor)
  if image.mode in ("RGBA", "LA"):
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    image = Image.alpha_composite(white, image.convert("RGBA"))
  return _checked_size(np.asarray(image.convert("RGB"), np.uint8))


def _square_rgb(rgb: np.ndarray) -> np.ndarray:
  h, w = rgb.shape[:2]
  s = max(h, w)
  out = np.full((s, s, 3), 255, np.uint8)
  out[(s - h) // 2 : (s - h) // 2 + h, (s - w) // 2 : (s - w) // 2 + w] = rgb
  return out


PREPARE_CHUNK = 16  # images squared, then resized together (one resize per distinct size), at a time


def prepare_images(images: Sequence[Any] | np.ndarray | Any, image_size: int, channels: int = 1) -> np.ndarray:
  """Images of any accepted kind and size -> uint8 [B, image_size, image_size, channels], as in training
  (channels 1: grey, 0 ink, 255 paper; 3: RGB on white).

  `images` is a list of images, a batch array [B, H, W, C], or one image.
  """
  if isinstance(images, np.ndarray) and images.ndim == 4:
    images = list(images)
  elif not isinstance(images, (list, tuple)):
    images = [images]
  if not images:
    raise ValueError("no images given")
  chunks = (images[i : i + PREPARE_CHUNK] for i in range(0, len(images), PREPARE_CHUNK))
  return np.concatenate([resize_squares([squared(img, channels) for img in chunk], image_size) for chunk in chunks])


def resize_squares(squares: Sequence[np.ndarray], image_size: int) -> np.ndarray:
  """Squares of any sides (uint8 [S, S] grey or [S, S, 3] RGB, from `squared`) -> uint8 [N, image_size,
  image_size, C] in their order, resized as the training images, one resize per distinct side."""
  out = [None] * len(squares)
  by_side = {}
  for i, sq in enumerate(squares):
    by_side.setdefault(sq.shape[0], []).append(i)
  for idx in by_side.values():
    stack = np.stack([_with_channel(squares[i]) for i in idx])
    for i, img in zip(idx, loader.resize_images(stack, image_size)):
      out[i] = img
  return np.stack(out)


def _with_channel(square_image: np.ndarray) -> np.ndarray:
  """[S, S] -> [S, S, 1]; [S, S, 3] as it is."""
  return square_image[..., None] if square_image.ndim == 2 else square_image
