"""Writes Omniglot alphabets out as a folder of PNGs, to try the folder data source on real drawings.

    python -m siamese_jax.tools.omniglot_folder --out=/tmp/glyphs --alphabets=Atlantean,Tengwar [--flat]

Grouped: OUT/<alphabet>/<character>/<drawer>.png; flat: OUT/<alphabet>_<character>/<drawer>.png.
"""

from __future__ import annotations

import os

import numpy as np

from siamese_jax.omniglot import loader


def write_folder(chars: loader.CharacterArray, out: str, grouped: bool = True) -> int:
  """Writes every image of `chars` [C, D, H, W, 1] as OUT/<group>/<class>/<drawer>.png (or flat); returns the count."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  n = 0
  for c in range(chars.num_characters):
    group = chars.group_names[int(chars.alphabets[c])]
    name = f"character{int(chars.labels[c]):04d}"
    folder = os.path.join(out, group, name) if grouped else os.path.join(out, f"{group}_{name}")
    os.makedirs(folder, exist_ok=True)
    for d, drawer in enumerate(chars.drawers):
      Image.fromarray(np.asarray(chars.images[c, d, :, :, 0])).save(os.path.join(folder, f"{int(drawer):02d}.png"))
      n += 1
  return n


def main(argv):
  del argv
  chars = loader.load_characters(
    FLAGS.split, alphabets=FLAGS.alphabets or None, data_dir=FLAGS.data_dir, manual_dir=FLAGS.manual_dir
  )
  n = write_folder(chars, FLAGS.out, grouped=not FLAGS.flat)
  print(f"wrote {n} images of {chars.num_characters} characters to {FLAGS.out}")


if __name__ == "__main__":
  from absl import app, flags

  flags.DEFINE_string("out", None, "Folder to write.", required=True)
  flags.DEFINE_string("split", "evaluation", "Omniglot split: background or evaluation.")
  flags.DEFINE_list("alphabets", [], "Alphabets to write (default: all of the split).")
  flags.DEFINE_bool("flat", False, "OUT/<alphabet>_<character>/ instead of OUT/<alphabet>/<character>/.")
  flags.DEFINE_string("data_dir", None, "tfds data dir.")
  flags.DEFINE_string("manual_dir", None, "Folder with the Omniglot zips (default $OMNIGLOT_DIR).")
  FLAGS = flags.FLAGS
  app.run(main)
