"""Identification CLI: `python -m siamese_jax.identify --gallery=DIR (--workdir=W | --pretrained) IMAGE...`.

--gallery is a folder DIR/<class>/<image> (embedded now; --save=FILE.npz keeps it) or a saved .npz.
Prints one row per query: the prediction (or "unknown" under the fitted threshold) and the top k
classes with their probabilities.
"""

import sys

from absl import app, flags


def main(argv):
  FLAGS = flags.FLAGS  # noqa: N806 - defined below, for a run of this file only
  if len(argv) < 2 or not FLAGS.gallery or bool(FLAGS.workdir) == FLAGS.pretrained:
    raise app.UsageError("usage: python -m siamese_jax.identify --gallery=DIR (--workdir=W | --pretrained) IMAGE...")
  from siamese_jax import api, workdir  # pylint: disable=g-import-not-at-top
  from siamese_jax.folder import FolderDataError  # pylint: disable=g-import-not-at-top
  from siamese_jax.gallery import Gallery  # pylint: disable=g-import-not-at-top

  try:
    net = api.load("pretrained" if FLAGS.pretrained else FLAGS.workdir)
    if FLAGS.gallery.endswith(".npz"):
      gallery = Gallery.load(FLAGS.gallery, net)
    else:
      gallery = Gallery.from_folder(net, FLAGS.gallery)
    if FLAGS.save:
      gallery.save(FLAGS.save)
    results = gallery.identify(argv[1:], k=FLAGS.top)
  except (FileNotFoundError, ValueError, workdir.WorkdirError, FolderDataError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  width = max(len(q) for q in argv[1:])
  print(f"{'query':<{width}}  prediction  (threshold {net.threshold:.3f})  top {FLAGS.top}")
  for query, r in zip(argv[1:], results):
    top = "  ".join(f"{name} {p:.3f}" for name, p in r["top"])
    print(f"{query:<{width}}  {r['prediction']}  |  {top}")


if __name__ == "__main__":
  flags.DEFINE_string("gallery", None, "A folder DIR/<class>/<image>, or a gallery saved with --save.")
  flags.DEFINE_string("workdir", None, "A trained workdir (config.json and checkpoints).")
  flags.DEFINE_bool("pretrained", False, "Use the model shipped in the package instead of a workdir.")
  flags.DEFINE_integer("top", 3, "Classes shown per query.")
  flags.DEFINE_string("save", None, "Write the gallery's embeddings to this .npz for later runs.")
  app.run(main)
