"""Exports a trained workdir as a self-contained model folder (config.json, params.npz, eval.json).

  python -m siamese_jax.export --workdir=runs/pretrained_cpu --out=siamese_jax/pretrained/cpu

`make pretrained` trains the `:cpu` preset from scratch and exports it to the package.
"""

import sys

from absl import app, flags

flags.DEFINE_string("workdir", None, "A trained workdir.")
flags.DEFINE_string("out", None, "The model folder to write.")
flags.mark_flags_as_required(["workdir", "out"])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from siamese_jax import workdir  # pylint: disable=g-import-not-at-top

  try:
    out = workdir.export(FLAGS.workdir, FLAGS.out)
  except (FileNotFoundError, workdir.WorkdirError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  print(f"exported {FLAGS.workdir} to {out}")


if __name__ == "__main__":
  app.run(main)
