"""tensorflow-datasets builder for Omniglot that keeps the drawer and reads local zips.

The stock tfds `omniglot` builder drops the drawer number (Koch's split needs it)
and only accepts the official archives' checksums. `OmniglotDrawers` downloads the
official release with checksums verified (see `checksums.tsv` beside this file)
when no manual directory is given, and otherwise reads the four zips from the
manual directory as they are, without checksum checks.
"""

from __future__ import annotations

import io
import os
import re
import zipfile

import numpy as np
import tensorflow_datasets as tfds

from siamese_jax.omniglot.constants import (
  ALPHABETS,
  IMAGE_SIZE,
  NUM_CHARACTERS,
  NUM_DRAWERS,
  SPLIT_ZIPS,
  OmniglotDataError,
)

_URL = "https://github.com/brendenlake/omniglot/raw/master/python/"
# <root>/<Alphabet>/characterNN/XXXX_YY.png
_MEMBER_RE = re.compile(r"^[^/]+/([^/]+)/character(\d+)/(\d+)_(\d+)\.png$")

MANUAL_INSTRUCTIONS = (
  "Put the four official Omniglot zips in one folder: "
  + ", ".join(SPLIT_ZIPS.values())
  + " (github.com/brendenlake/omniglot, python/). Point "
  "--config.data.manual_dir (or the OMNIGLOT_DIR environment variable) at it."
)


def decode_png(data: bytes, name: str) -> np.ndarray:
  """Decodes one Omniglot PNG to uint8 [105, 105, 1] (0 ink, 255 paper)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  try:
    img = Image.open(io.BytesIO(data))
    img.load()
  except Exception as e:  # noqa: BLE001 - PIL raises many types.
    raise OmniglotDataError(f"{name}: not a readable PNG ({e})") from None
  if img.size != (IMAGE_SIZE, IMAGE_SIZE):
    raise OmniglotDataError(f"{name}: image is {img.size[0]}x{img.size[1]}, expected {IMAGE_SIZE}x{IMAGE_SIZE}")
  return np.asarray(img.convert("L"), dtype=np.uint8)[:, :, None]


def open_zip(path: str) -> zipfile.ZipFile:
  """Opens a zip with a clear error when it is missing or corrupt."""
  if not os.path.exists(path):
    raise OmniglotDataError(f"missing {path}. {MANUAL_INSTRUCTIONS}")
  try:
    zf = zipfile.ZipFile(path)
  except (zipfile.BadZipFile, OSError) as e:
    raise OmniglotDataError(f"{path} is not a valid zip ({e})") from None
  return zf


def iter_zip_examples(path: str):
  """Yields (key, example dict) for every PNG in an Omniglot split zip."""
  zf = open_zip(path)
  with zf:
    names = sorted(n for n in zf.namelist() if n.endswith(".png"))
    if not names:
      raise OmniglotDataError(f"{path} holds no PNG files")
    for name in names:
      m = _MEMBER_RE.match(name)
      if not m:
        raise OmniglotDataError(f"{path}: unexpected member {name!r} (want <root>/<Alphabet>/characterNN/XXXX_YY.png)")
      alphabet, char_in_alpha, label, drawer = m.groups()
      if alphabet not in ALPHABETS:
        raise OmniglotDataError(f"{path}: unknown alphabet {alphabet!r}")
      try:
        data = zf.read(name)
      except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise OmniglotDataError(f"{path}: corrupt member {name} ({e})") from None
      yield (
        name,
        {
          "image": decode_png(data, f"{path}:{name}"),
          "alphabet": alphabet,
          "alphabet_name": alphabet,
          "character": int(char_in_alpha) - 1,
          "label": int(label) - 1,
          "drawer": int(drawer),
        },
      )


class OmniglotDrawers(tfds.core.GeneratorBasedBuilder):
  """Omniglot with alphabet, character, global label and drawer per image."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release: keeps the drawer number."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
      features=tfds.features.FeaturesDict(
        {
          "image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 1), encoding_format="png"),
          "alphabet": tfds.features.ClassLabel(names=ALPHABETS),
          "alphabet_name": tfds.features.Text(),
          "character": np.int32,
          "label": tfds.features.ClassLabel(num_classes=NUM_CHARACTERS),
          "drawer": np.int32,
        }
      ),
      supervised_keys=("image", "label"),
      homepage="https://github.com/brendenlake/omniglot",
      description=(
        "Omniglot (Lake et al., 2015): 1623 handwritten characters from 50"
        f" alphabets, {NUM_DRAWERS} drawers each; keeps the drawer number."
      ),
    )

  def _split_generators(self, dl_manager):
    zips = self._zip_paths(dl_manager)
    return {split: self._generate_examples(path=os.fspath(zips[split])) for split in SPLIT_ZIPS}

  def _zip_paths(self, dl_manager) -> dict[str, str]:
    """Local zip paths: from the manual dir, else downloaded with checksums."""
    # tfds defaults the manual dir to <data_dir>/downloads/manual: use it only if it holds zips.
    manual_dir = getattr(dl_manager, "_manual_dir", None)
    if manual_dir and any(os.path.exists(os.path.join(manual_dir, f)) for f in SPLIT_ZIPS.values()):
      return {s: os.path.join(manual_dir, f) for s, f in SPLIT_ZIPS.items()}
    try:
      return dl_manager.download({s: _URL + f for s, f in SPLIT_ZIPS.items()})
    except Exception as e:  # noqa: BLE001 - network errors come in many types.
      raise OmniglotDataError(
        f"could not download Omniglot ({type(e).__name__}: {e}).\n" + MANUAL_INSTRUCTIONS
      ) from None

  def _generate_examples(self, path):
    yield from iter_zip_examples(path)
