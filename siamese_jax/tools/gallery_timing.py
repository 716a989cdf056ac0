"""Times the folder intake and identification at scale, and prints the figures.

    python -m siamese_jax.tools.gallery_timing --folder=runs/omniglot_test_alphabets [--classes=1000]

1. Preparing `--folder` into a fresh tfds data dir (reading, greying, resizing, writing), at 28 px.
2. A gallery of `--classes` Omniglot characters (drawer 1 of each: background first, then evaluation)
   enrolled from arrays with the shipped model, then `--classes` queries (drawer 2 of each)
   identified against it: seconds for each, top-1 and top-5 accuracy, with and without the model's
   test-time augmentation.
"""

from __future__ import annotations

import tempfile
import time

import numpy as np


def time_prepare(folder: str, image_size: int = 28) -> tuple[float, int]:
  """(seconds, images) to prepare `folder` from nothing into a temporary tfds data dir."""
  from siamese_jax.folder import loader  # pylint: disable=g-import-not-at-top

  with tempfile.TemporaryDirectory() as data_dir:
    t0 = time.perf_counter()
    images = loader.prepare(folder, image_size, data_dir)
    return time.perf_counter() - t0, len(images.path)


def omniglot_pairs(num_classes: int, data_dir=None, manual_dir=None) -> tuple[np.ndarray, np.ndarray]:
  """Drawer 1 and drawer 2 of the first `num_classes` Omniglot characters: two uint8 [C, 105, 105, 1]."""
  from siamese_jax.omniglot import loader  # pylint: disable=g-import-not-at-top

  parts = [
    loader.load_characters(s, drawers=(1, 2), data_dir=data_dir, manual_dir=manual_dir)
    for s in ("background", "evaluation")
  ]
  images = np.concatenate([p.images for p in parts])[:num_classes]
  return images[:, 0], images[:, 1]


def time_identify(net, enrolled: np.ndarray, queries: np.ndarray, k: int = 5) -> dict:
  """Enrolls one image per class and identifies one query per class; seconds and accuracies."""
  from siamese_jax.gallery import Gallery  # pylint: disable=g-import-not-at-top

  names = [f"c{i}" for i in range(len(enrolled))]
  t0 = time.perf_counter()
  gallery = Gallery.enroll(net, dict(zip(names, list(enrolled))))
  t1 = time.perf_counter()
  results = gallery.identify(list(queries), k=k)
  t2 = time.perf_counter()
  top = [[name for name, _ in r["top"]] for r in results]
  return {
    "enroll_s": t1 - t0,
    "identify_s": t2 - t1,
    "top1": 100.0 * np.mean([t[0] == n for t, n in zip(top, names)]),
    f"top{k}": 100.0 * np.mean([n in t for t, n in zip(top, names)]),
    "unknown": 100.0 * np.mean([r["prediction"] == "unknown" for r in results]),
  }


def main(argv):
  del argv
  from siamese_jax import api  # pylint: disable=g-import-not-at-top

  if FLAGS.folder:
    seconds, n = time_prepare(FLAGS.folder)
    print(f"prepare {FLAGS.folder}: {n} images in {seconds:.1f} s ({n / seconds:.0f} images/s)")
  enrolled, queries = omniglot_pairs(FLAGS.classes, FLAGS.data_dir, FLAGS.manual_dir)
  for tta in (False, True):
    net = api.load("pretrained", tta=tta)
    time_identify(net, enrolled[:8], queries[:8])  # compiles
    r = time_identify(net, enrolled, queries)
    print(
      f"{len(queries)} queries against {len(enrolled)} classes, tta={tta}: enroll {r['enroll_s']:.1f} s,"
      f" identify {r['identify_s']:.1f} s; top-1 {r['top1']:.1f}%, top-5 {r['top5']:.1f}%, unknown {r['unknown']:.1f}%"
    )


if __name__ == "__main__":
  from absl import app, flags

  flags.DEFINE_string("folder", None, "A folder to time the preparation of.")
  flags.DEFINE_integer("classes", 1000, "Gallery classes (and queries).")
  flags.DEFINE_string("data_dir", None, "tfds data dir of Omniglot.")
  flags.DEFINE_string("manual_dir", None, "Folder with the Omniglot zips (default $OMNIGLOT_DIR).")
  FLAGS = flags.FLAGS
  app.run(main)
