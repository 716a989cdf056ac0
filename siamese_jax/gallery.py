"""Identification against a gallery: a few enrolled images per class, embedded once, saved to one file.

    net = siamese_jax.load("pretrained")
    gallery = siamese_jax.Gallery.from_folder(net, "people/")      # people/<name>/<image>
    gallery.identify(["who.png"], k=3)                             # top classes and scores
    gallery.save("people.npz"); siamese_jax.Gallery.load("people.npz", net)

A query's score for a class is the mean logit of its pairs with the class's enrolled images (as the
k-shot evaluator scores a class); below the network's fitted threshold (`net.threshold`) the answer is
"unknown".
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

from absl import logging
import numpy as np

from siamese_jax import api

UNKNOWN = "unknown"


def model_id(net: api.Siamese) -> str:
  """12 hex digits that name the network's parameters and how it scores (size, test-time copies)."""
  import jax  # pylint: disable=g-import-not-at-top

  h = hashlib.sha256(f"{net.image_size} {net.tta_copies}".encode())
  for leaf in jax.tree_util.tree_leaves(net.params):
    h.update(np.asarray(leaf).tobytes())
  return h.hexdigest()[:12]


@dataclasses.dataclass
class Gallery:
  """Enrolled images: names [C] of the classes, labels [M] (an index into names per image) and the
  embeddings [M, F] the network's pair scorer compares (`Siamese.scored_embeddings`)."""

  net: api.Siamese
  names: list[str]
  labels: np.ndarray
  embeddings: np.ndarray

  @classmethod
  def enroll(cls, net: api.Siamese, classes: dict) -> Gallery:
    """A gallery of {name: image or list of images} (any kind `prepare_images` accepts)."""
    if not classes:
      raise ValueError("no classes to enroll")
    names = list(classes)
    groups = [v if isinstance(v, (list, tuple)) else [v] for v in classes.values()]
    empty = [n for n, g in zip(names, groups) if not g]
    if empty:
      raise ValueError(f"no images for {', '.join(empty)}")
    images = net.prepare([img for g in groups for img in g])
    labels = np.repeat(np.arange(len(names)), [len(g) for g in groups])
    return cls(net, names, labels, net.scored_embeddings(images))

  @classmethod
  def from_folder(cls, net: api.Siamese, folder: str) -> Gallery:
    """A gallery of a folder DIR/<class>/<image> (or DIR/<group>/<class>/<image>); unreadable files
    are skipped with a warning."""
    from siamese_jax.folder import scan  # pylint: disable=g-import-not-at-top

    read = scan.read_images(scan.list_folder(folder, what="gallery"), net.image_size, channels=net.channels)
    for path, why in read.skipped:
      logging.warning("gallery: skipping %s (%s)", path, why)
    names, labels = np.unique(read.cls, return_inverse=True)
    return cls(net, names.tolist(), labels, net.scored_embeddings(read.image))

  def identify(self, queries, k: int = 5) -> list[dict]:
    """For each query image: {"top": [(name, probability), ...] best first (k of them), "prediction":
    the best class, or "unknown" when its probability is under `net.threshold`}."""
    scores = self.class_scores(self.net.scored_embeddings(self.net.prepare(queries)))
    probs = 1 / (1 + np.exp(-scores))
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    out = []
    for row, p in zip(order, probs):
      top = [(self.names[j], float(p[j])) for j in row]
      out.append({"top": top, "prediction": top[0][0] if top[0][1] >= self.net.threshold else UNKNOWN})
    return out

  def class_scores(self, queries: np.ndarray) -> np.ndarray:
    """Logits [Q, C]: each query embedding's mean pair logit with each class's enrolled images."""
    logits = self.net.pair_scores(queries, self.embeddings)  # [Q, M]
    onehot = np.eye(len(self.names), dtype=np.float32)[self.labels]  # [M, C]
    return logits @ onehot / onehot.sum(axis=0)

  def save(self, path: str) -> None:
    """Writes the gallery to one .npz (atomically), with the id of the network that embedded it."""
    from siamese_jax import workdir  # pylint: disable=g-import-not-at-top

    with workdir.atomic_file(path, "wb") as f:
      np.savez(f, names=np.array(self.names), labels=self.labels, embeddings=self.embeddings, model=model_id(self.net))

  @classmethod
  def load(cls, path: str, net: api.Siamese) -> Gallery:
    """A saved gallery; ValueError in one line when another network (or scoring) embedded it."""
    if not os.path.exists(path):
      raise FileNotFoundError(f"no gallery file {path}")
    with np.load(path) as z:
      if str(z["model"]) != model_id(net):
        raise ValueError(f"{path} was embedded by another network (or test-time augmentation); enroll again")
      return cls(net, z["names"].tolist(), z["labels"], z["embeddings"])
