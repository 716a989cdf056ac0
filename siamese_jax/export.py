"""Exports a trained workdir: as a self-contained model folder (config.json, params.npz, eval.json), or
as ONNX graphs that run without JAX (encoder.onnx, head.onnx and model.json; see `onnx_export`).

  python -m siamese_jax.export --workdir=runs/pretrained_cpu --out=siamese_jax/pretrained/cpu
  python -m siamese_jax.export --format=onnx --workdir=pretrained --out=onnx/

`make pretrained` trains the `:cpu` preset from scratch and exports it to the package.
"""

import sys

from absl import app, flags

flags.DEFINE_string("workdir", None, "A trained workdir, or 'pretrained' for the shipped model.")
flags.DEFINE_string("out", None, "The folder to write.")
flags.DEFINE_enum("format", "folder", ["folder", "onnx"], "folder: config and parameters; onnx: ONNX graphs.")
flags.mark_flags_as_required(["workdir", "out"])
FLAGS = flags.FLAGS


def export_onnx(workdir_path: str, out: str) -> list[str]:
  """Writes encoder.onnx, head.onnx and model.json (input size, embedding size, fitted threshold)."""
  import os  # pylint: disable=g-import-not-at-top

  from siamese_jax import api, model, onnx_export, workdir  # pylint: disable=g-import-not-at-top

  net = api.load(workdir_path, tta=False)
  paths = onnx_export.write(net.params, model.spec(net.config.model), out)
  results = workdir.read_eval(net.workdir) or {}
  fitted = results.get("verification", {}).get("fitted") if not int(net.config.eval.tta_copies) > 1 else None
  info = {
    "image_size": net.image_size,
    "channels": net.channels,
    "embed_dim": int(net.config.model.embed_dim),
    "input": "uint8 [B, S, S, channels] (grey: 0 ink, 255 paper), as Siamese.prepare gives",
    # The evaluation fitted its threshold for its own scorer; with test-time augmentation that is not this one.
    "threshold": float(fitted["threshold"]) if fitted else 0.5,
    "from": os.path.abspath(net.workdir),
  }
  path = os.path.join(out, "model.json")
  workdir.write_json(path, info)
  return [*paths, path]


def main(argv):
  del argv
  from siamese_jax import workdir  # pylint: disable=g-import-not-at-top

  try:
    if FLAGS.format == "onnx":
      written = export_onnx(FLAGS.workdir, FLAGS.out)
      print("wrote " + ", ".join(written))
      return
    out = workdir.export(FLAGS.workdir, FLAGS.out)
  except (FileNotFoundError, ImportError, workdir.WorkdirError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  print(f"exported {FLAGS.workdir} to {out}")


if __name__ == "__main__":
  app.run(main)
