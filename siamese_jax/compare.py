"""Pair-scoring CLI: `python -m siamese_jax.compare a.png b.png --workdir=DIR` (or `--pretrained`).

Prints the probability that the two drawings show the same character.
"""

import sys

from absl import app, flags

flags.DEFINE_string("workdir", None, "A trained workdir (config.json and checkpoints).")
flags.DEFINE_bool("pretrained", False, "Use the model shipped in the package instead of a workdir.")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) != 3 or bool(FLAGS.workdir) == FLAGS.pretrained:
    raise app.UsageError("usage: python -m siamese_jax.compare A.png B.png (--workdir=DIR | --pretrained)")
  from siamese_jax import api, workdir  # pylint: disable=g-import-not-at-top

  a, b = argv[1], argv[2]
  try:
    for path in (a, b):  # Check the images before loading the network.
      api.prepare_images([path], 8)
    net = api.load("pretrained" if FLAGS.pretrained else FLAGS.workdir)
    p = float(net.similarity([a], [b])[0])
  except (FileNotFoundError, ValueError, workdir.WorkdirError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  print(f"{p:.4f}")


if __name__ == "__main__":
  app.run(main)
