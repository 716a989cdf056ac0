"""Python API for notebooks: load a trained workdir (or the shipped model), embed, compare, classify.

    import siamese_jax
    net = siamese_jax.load("pretrained")      # the shipped :cpu model; or a workdir, e.g. "runs/cpu"
    net.similarity("a.png", "b.png")          # probability they show one character
    net.one_shot(query, [img1, img2, img3])    # N-way scores and prediction
    net.same("a.png", "b.png")                # similarity >= net.threshold

`similarity` and `one_shot` score as the evaluator does: with the workdir's test-time
augmentation (`eval.tta_copies` distortions of each image, on in `:cpu`) unless
`load(..., tta=False)`. Images may be file paths, PIL images or arrays of any size (see `siamese_jax.images`
for what is accepted); they are resized exactly as the training images were.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from siamese_jax import model, oneshot
from siamese_jax import workdir as workdir_lib
from siamese_jax.images import prepare_images
from siamese_jax.omniglot import loader

PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained")
PRETRAINED = {"pretrained": "cpu", "pretrained:cpu": "cpu"}  # name -> folder under PRETRAINED_DIR

__all__ = ["Siamese", "load", "load_dataset", "prepare_images", "pretrained_workdir"]


@dataclasses.dataclass
class Siamese:
  """A trained network: its config and parameters, with embed / similarity / one_shot.

  tta: score pairs with the config's test-time augmentation (`eval.tta_copies`, `tta_strength`,
  `tta_seed`; absent keys: off), as `--mode=eval` scores "model"; False scores each image once.
  """

  config: ml_collections.ConfigDict
  params: model.Params
  workdir: str | None = None
  tta: bool = True

  def __post_init__(self):
    plain = oneshot.config_scorer(self.params, self.config.model)
    e = self.config.eval
    self.scorer = oneshot.tta_from_config(plain, self.config.augment, e) if self.tta else plain
    configured_copies = max(int(e.tta_copies), 1)
    # versions of each image that similarity and one_shot average over
    self.tta_copies = configured_copies if self.tta else 1
    # whether this scorer is the one `--mode=eval` scored (and fitted eval.json's threshold for)
    self._is_evaluated_scorer = self.tta_copies == configured_copies
    self._encode = plain.jitted_embed
    self._scored_embed = self.scorer.jitted_embed
    self._logits = jax.jit(self.scorer.pair)

  @property
  def image_size(self) -> int:
    return int(self.config.model.image_size)

  @property
  def channels(self) -> int:
    """1: the network reads grey images; 3: RGB."""
    return int(self.config.model.channels)

  def prepare(self, images) -> np.ndarray:
    """Images of any accepted kind as this network's input, uint8 [B, S, S, channels] (`prepare_images`)."""
    return prepare_images(images, self.image_size, self.channels)

  def embed(self, images) -> np.ndarray:
    """Embeddings [B, E] of a list (or batch) of images (each image once, no test-time augmentation)."""
    return np.asarray(self._encode(self.params, jnp.asarray(self.prepare(images))))

  def _scored(self, images) -> np.ndarray:
    """What the pair scorer compares: [B, E], or [B, copies * E] with test-time augmentation."""
    return self.scored_embeddings(self.prepare(images))

  def scored_embeddings(self, prepared: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """What the pair scorer compares, of images already prepared (uint8 [B, S, S, 1], `prepare_images`):
    [B, E], or [B, copies * E] with test-time augmentation; `batch_size` images per encoder call."""
    return oneshot.embed_images(self.scorer, prepared, batch_size)

  def pair_scores(self, e_a: np.ndarray, e_b: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Logits [A, B] of every pair (a, b) of scored embeddings e_a [A, ...] and e_b [B, ...]."""
    out = [
      np.asarray(self._cross(self.params, jnp.asarray(e_a[i : i + chunk]), jnp.asarray(e_b)))
      for i in range(0, len(e_a), chunk)
    ]
    return np.concatenate(out) if out else np.zeros((0, len(e_b)), np.float32)

  @functools.cached_property
  def _cross(self):
    pair = self.scorer.pair
    return jax.jit(lambda params, a, b: jax.vmap(lambda x: pair(params, jnp.broadcast_to(x, b.shape), b))(a))

  def similarity(self, images_a, images_b) -> np.ndarray:
    """Probabilities [B] that images_a[i] and images_b[i] show the same character (symmetric)."""
    e_a, e_b = self._scored(images_a), self._scored(images_b)
    if len(e_a) != len(e_b):
      raise ValueError(f"{len(e_a)} images against {len(e_b)}")
    return np.asarray(jax.nn.sigmoid(self._logits(self.params, e_a, e_b)))

  @functools.cached_property
  def threshold(self) -> float:
    """The probability from which `same` calls a pair one character: the threshold the evaluation
    fitted on the validation alphabets' pairs for this scorer (eval.json), else 0.5. The fit is
    made for the evaluator's scorer, so with a TTA config and `tta=False` it is 0.5."""
    results = workdir_lib.read_eval(self.workdir) if self.workdir and self._is_evaluated_scorer else None
    fitted = (results or {}).get("verification", {}).get("fitted")
    return float(fitted["threshold"]) if fitted else 0.5

  def same(self, images_a, images_b) -> np.ndarray:
    """Whether images_a[i] and images_b[i] show one character: similarity >= threshold; bool [B]."""
    return self.similarity(images_a, images_b) >= self.threshold

  def one_shot(self, query, support) -> dict:
    """Classifies one query among N classes.

    support: N images (one-shot) or N lists of k images (k-shot; class score =
    mean of its k logits, as the evaluator). Returns {"scores": [N] logits,
    "probabilities": [N], "prediction": index of the best class (first on ties)}.
    """
    groups = [s if isinstance(s, (list, tuple)) else [s] for s in support]
    flat = [img for g in groups for img in g]
    e_q = self._scored([query])[0]
    e_s = self._scored(flat)
    logits = np.asarray(self._logits(self.params, e_q[None], e_s))
    bounds = np.cumsum([0] + [len(g) for g in groups])
    scores = np.array([logits[a:b].mean() for a, b in zip(bounds[:-1], bounds[1:])])
    return {"scores": scores, "probabilities": 1 / (1 + np.exp(-scores)), "prediction": int(np.argmax(scores))}


def pretrained_workdir(name: str = "pretrained") -> str:
  """The folder of a model shipped in the package ("pretrained" = "pretrained:cpu")."""
  if name not in PRETRAINED:
    raise ValueError(f"unknown pretrained model {name!r}; choose from {sorted(PRETRAINED)}")
  return os.path.join(PRETRAINED_DIR, PRETRAINED[name])


def load(workdir: str, tta: bool = True) -> Siamese:
  """A trained network: a workdir's config and best (else latest) parameters.

  `workdir="pretrained"` loads the model shipped in the package (unless a folder of that
  name exists here). Read-only: a workdir that is still training can be loaded.
  tta=False: `similarity` and `one_shot` score each image once, ignoring `eval.tta_copies`.
  """
  if workdir in PRETRAINED and not os.path.isdir(workdir):
    workdir = pretrained_workdir(workdir)
  config = workdir_lib.read_config(workdir)
  return Siamese(config=config, params=workdir_lib.load_params(workdir, config.model), workdir=workdir, tta=tta)


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
