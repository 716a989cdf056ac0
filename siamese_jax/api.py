"""Python API for notebooks: load a trained workdir, embed, compare and classify images.

    import siamese_jax
    net = siamese_jax.load("runs/cpu")
    net.similarity("a.png", "b.png")          # probability they show one character
    net.one_shot(query, [img1, img2, img3])    # N-way scores and prediction

Images may be file paths, PIL images, or uint8 / float arrays of any size, [H, W],
[H, W, 1] or [H, W, 3]. Arrays follow the Omniglot PNG convention: dark ink on
light paper (uint8 0..255, or float 0..1). They are resized exactly as the
training images were (`loader.resize_images`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from siamese_jax import checkpoints
from siamese_jax import model
from siamese_jax.omniglot import loader


def _to_uint8(image: Any) -> np.ndarray:
  """One image as uint8 [H, W, 1], 0 ink, 255 paper."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  if isinstance(image, (str, os.PathLike)):
    if not os.path.exists(image):
      raise FileNotFoundError(f"no such image file: {image}")
    try:
      with Image.open(image) as img:
        image = img.convert("L")
    except Exception as e:  # noqa: BLE001 - PIL raises many types.
      raise ValueError(f"cannot read {image} as an image ({e})") from None
  if isinstance(image, Image.Image):
    image = np.asarray(image.convert("L"))
  arr = np.asarray(image)
  if arr.ndim == 3 and arr.shape[-1] in (3, 4):
    arr = arr[..., :3].mean(axis=-1)
  if arr.ndim == 3 and arr.shape[-1] == 1:
    arr = arr[..., 0]
  if arr.ndim != 2:
    raise ValueError(f"expected one image [H, W], [H, W, 1] or [H, W, 3], got shape {arr.shape}")
  if arr.dtype != np.uint8:
    arr = np.clip(np.round(arr.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
  return arr[:, :, None]


def prepare_images(images: Sequence[Any] | np.ndarray, image_size: int) -> np.ndarray:
  """Images of any kind and size -> uint8 [B, image_size, image_size, 1], as in training."""
  if isinstance(images, np.ndarray) and images.ndim == 4:
    images = list(images)
  elif not isinstance(images, (list, tuple)):
    images = [images]
  out = []
  for img in images:
    u8 = _to_uint8(img)
    if u8.shape[0] != u8.shape[1]:
      raise ValueError(f"images must be square (Omniglot drawings are), got {u8.shape[:2]}")
    out.append(loader.resize_images(u8[None], image_size)[0])
  return np.stack(out)


@dataclasses.dataclass
class Siamese:
  """A trained network: its config and parameters, with embed / similarity / one_shot."""

  config: ml_collections.ConfigDict
  params: model.Params
  workdir: str | None = None

  def __post_init__(self):
    dtype = jnp.dtype(self.config.model.dtype)
    self._encode = jax.jit(lambda p, x: model.encode(p, x, dtype))
    self._logits = jax.jit(model.pair_logits)

  @property
  def image_size(self) -> int:
    return int(self.config.model.image_size)

  def embed(self, images) -> np.ndarray:
    """Embeddings [B, E] of a list (or batch) of images."""
    return np.asarray(self._encode(self.params, jnp.asarray(prepare_images(images, self.image_size))))

  def similarity(self, images_a, images_b) -> np.ndarray:
    """Probabilities [B] that images_a[i] and images_b[i] show the same character (symmetric)."""
    e_a, e_b = self.embed(images_a), self.embed(images_b)
    if len(e_a) != len(e_b):
      raise ValueError(f"{len(e_a)} images against {len(e_b)}")
    return np.asarray(jax.nn.sigmoid(self._logits(self.params, e_a, e_b)))

  def one_shot(self, query, support) -> dict:
    """Classifies one query among N classes.

    support: N images (one-shot) or N lists of k images (k-shot; class score =
    mean of its k logits, as the evaluator). Returns {"scores": [N] logits,
    "probabilities": [N], "prediction": index of the best class (first on ties)}.
    """
    groups = [s if isinstance(s, (list, tuple)) else [s] for s in support]
    flat = [img for g in groups for img in g]
    e_q = self.embed([query])[0]
    e_s = self.embed(flat)
    logits = np.asarray(self._logits(self.params, e_q[None], e_s))
    bounds = np.cumsum([0] + [len(g) for g in groups])
    scores = np.array([logits[a:b].mean() for a, b in zip(bounds[:-1], bounds[1:])])
    return {"scores": scores, "probabilities": 1 / (1 + np.exp(-scores)), "prediction": int(np.argmax(scores))}


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The resolved config recorded in `<workdir>/config.json`."""
  from siamese_jax import train  # pylint: disable=g-import-not-at-top

  path = os.path.join(workdir, train.CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{workdir} has no {train.CONFIG_FILE}: not a siamese_jax workdir")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def load(workdir: str) -> Siamese:
  """The workdir's config and best (else latest) parameters."""
  config = load_config(workdir)
  like = jax.eval_shape(lambda k: model.init(k, config.model), jax.random.PRNGKey(0))
  return Siamese(config=config, params=checkpoints.load_params(workdir, like), workdir=workdir)


def load_dataset(split: str = "background", data_dir: str | None = None, manual_dir: str | None = None) -> dict:
  """A whole Omniglot split as arrays, for exploration.

  Returns {"image": uint8 [N, 105, 105, 1] (0 ink), "alphabet": [N] ids, "alphabet_name":
  [N] str, "character": [N] (within the alphabet), "label": [N] (global), "drawer": [N] (1..20),
  "alphabets": the names in id order}. Prepares the data set on first use (see README).
  """
  from siamese_jax.omniglot.constants import ALPHABETS  # pylint: disable=g-import-not-at-top

  arrays = loader.load_split(split, data_dir, manual_dir)
  arrays["alphabet_name"] = np.array([ALPHABETS[i] for i in arrays["alphabet"]])
  arrays["alphabets"] = list(ALPHABETS)
  return arrays
