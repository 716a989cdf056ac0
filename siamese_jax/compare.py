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

  try:
    folder = api.pretrained_workdir() if FLAGS.pretrained else FLAGS.workdir
    model = workdir.read_config(folder).model
    # The images first, each read and reduced before the next and before the network exists: the
    # peak memory is the larger of one decoded image and the network's, not their sum.
    a, b = (api.prepare_images([path], model.image_size, model.channels) for path in argv[1:])
    net = api.load(folder)
    p = float(net.similarity(a, b)[0])
  except (FileNotFoundError, ValueError, workdir.WorkdirError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  print(f"{p:.4f}")


if __name__ == "__main__":
  app.run(main)
