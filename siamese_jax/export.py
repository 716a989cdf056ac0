"""Exports a trained workdir: as a self-contained model folder (config.json, params.npz, eval.json), or
as ONNX graphs that run without JAX (encoder.onnx, head.onnx and model.json; see `onnx_export`).

  python -m siamese_jax.export --workdir=runs/pretrained_cpu --out=siamese_jax/pretrained/cpu
  python -m siamese_jax.export --format=onnx --workdir=pretrained --out=onnx/

`make pretrained` trains the `:cpu` preset from scratch and exports it to the package.
"""

import sys

from absl import app, flags


def main(argv):
  del argv
  FLAGS = flags.FLAGS  # noqa: N806 - defined below, for a run of this file only
  from siamese_jax import onnx_export, workdir  # pylint: disable=g-import-not-at-top

  try:
    if FLAGS.format == "onnx":
      written = onnx_export.export_workdir(FLAGS.workdir, FLAGS.out)
      print("wrote " + ", ".join(written))
      return
    out = workdir.export(FLAGS.workdir, FLAGS.out)
  except (FileNotFoundError, ImportError, workdir.WorkdirError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  print(f"exported {FLAGS.workdir} to {out}")


if __name__ == "__main__":
  flags.DEFINE_string("workdir", None, "A trained workdir, or 'pretrained' for the shipped model.")
  flags.DEFINE_string("out", None, "The folder to write.")
  flags.DEFINE_enum("format", "folder", ["folder", "onnx"], "folder: config and parameters; onnx: ONNX graphs.")
  flags.mark_flags_as_required(["workdir", "out"])
  app.run(main)
