"""Lake et al.'s 20 official one-shot runs, scored as the official `demo_classification.py`.

Each run has 20 test items and 20 training images (one per class); each test item
is classified among the run's training images, and the error rate is averaged
over the runs. As in the demo, test and training file names are sorted, the
answer of the i-th test item is the i-th line of `class_labels.txt`, and the
prediction is the argmin of a cost (argmax of a score), first index on ties.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import urllib.request
import zipfile

import numpy as np

from siamese_jax.omniglot.constants import OmniglotDataError

RUNS_ZIP = "all_runs.zip"
RUNS_URL = "https://github.com/brendenlake/omniglot/raw/master/python/one-shot-classification/all_runs.zip"
RUNS_SHA256 = "437c1eeab0af8484112e1b4cc0f3d541ec727f7c47b9b202da738af9dfd6c325"
PUBLISHED_MHD_ERROR = 38.8  # Percent, from the official demo's output.


@dataclasses.dataclass(frozen=True)
class Run:
  """One run: test and training images (sorted by file name) and the answers.

  test: uint8 [20, 105, 105, 1]; train: uint8 [20, 105, 105, 1];
  answer: int [20], index into `train` of each test item's class.
  """

  name: str
  test_files: list[str]
  train_files: list[str]
  test: np.ndarray
  train: np.ndarray
  answer: np.ndarray


def find_runs_zip(path: str | None, manual_dir: str | None, cache_dir: str | None) -> str:
  """Locates all_runs.zip: the path given, the manual dir, $OMNIGLOT_DIR, or a download."""
  candidates = [path] if path else []
  for d in (manual_dir, os.environ.get("OMNIGLOT_DIR"), cache_dir):
    if d:
      candidates.append(os.path.join(os.path.expanduser(d), RUNS_ZIP))
  for c in candidates:
    if os.path.exists(c):
      return c
  if path:
    raise OmniglotDataError(f"{path} does not exist")
  if not cache_dir:
    raise OmniglotDataError(f"no {RUNS_ZIP}: set --config.eval.lake_runs or OMNIGLOT_DIR")
  target = os.path.join(os.path.expanduser(cache_dir), RUNS_ZIP)
  try:
    data = urllib.request.urlopen(RUNS_URL, timeout=30).read()
  except OSError as e:
    raise OmniglotDataError(
      f"could not download {RUNS_ZIP} ({e}); put it in the folder that --config.data.manual_dir or OMNIGLOT_DIR names"
    ) from None
  if hashlib.sha256(data).hexdigest() != RUNS_SHA256:
    raise OmniglotDataError(f"downloaded {RUNS_ZIP} has the wrong checksum")
  os.makedirs(os.path.dirname(target), exist_ok=True)
  with open(target, "wb") as f:
    f.write(data)
  return target


def _read_png(zf: zipfile.ZipFile, name: str) -> np.ndarray:
  from siamese_jax.omniglot.builder import decode_png  # pylint: disable=g-import-not-at-top

  return decode_png(zf.read(name), name)


def load_runs(path: str) -> list[Run]:
  """Reads every runNN folder of all_runs.zip."""
  from siamese_jax.omniglot.builder import open_zip  # pylint: disable=g-import-not-at-top

  runs = []
  with open_zip(path) as zf:
    names = set(zf.namelist())
    run_names = sorted({m.group(1) for n in names if (m := re.match(r"^(run\d+)/class_labels\.txt$", n))})
    if not run_names:
      raise OmniglotDataError(f"{path} holds no runNN/class_labels.txt")
    for run in run_names:
      lines = zf.read(f"{run}/class_labels.txt").decode().splitlines()
      pairs = [line.split() for line in lines if line.strip()]
      test_files = sorted(p[0] for p in pairs)
      train_files = sorted(p[1] for p in pairs)
      answer = np.array([train_files.index(p[1]) for p in pairs])  # The demo's answers_files.
      test = np.stack([_read_png(zf, f) for f in test_files])
      train = np.stack([_read_png(zf, f) for f in train_files])
      runs.append(Run(run, test_files, train_files, test, train, answer))
  return runs


def run_alphabets(runs: list[Run], images: np.ndarray, alphabet_of: np.ndarray) -> list[int | None]:
  """The alphabet of each run: that of the Omniglot images its training images are (pixel for pixel).

  images: uint8 [C, D, 105, 105, 1] (a split at its native size); alphabet_of: [C] alphabet ids.
  None for a run whose training images match none, or images of several alphabets.
  """
  key = lambda img: hashlib.sha1(np.ascontiguousarray(img).tobytes()).digest()
  c, d = images.shape[:2]
  owner = {key(images[i, j]): int(alphabet_of[i]) for i in range(c) for j in range(d)}
  out = []
  for r in runs:
    found = {owner.get(key(img)) for img in r.train}
    out.append(found.pop() if len(found) == 1 and None not in found else None)
  return out


def error_rates(runs: list[Run], predictions: list[np.ndarray]) -> np.ndarray:
  """Percent error of each run given predicted training indices [20] per run."""
  return np.array([100.0 * np.mean(p != r.answer) for r, p in zip(runs, predictions)])


def ink_points(image: np.ndarray) -> np.ndarray:
  """Ink pixel coordinates [P, 2] (row, col) centred on their mean, as LoadImgAsPoints."""
  rows, cols = np.nonzero(image[..., 0] < 128)
  pts = np.stack([rows, cols], axis=1).astype(float)
  return pts - pts.mean(axis=0)


def modified_hausdorff(a: np.ndarray, b: np.ndarray) -> float:
  """Modified Hausdorff distance of two point sets [P, 2] and [Q, 2] (Dubuisson & Jain)."""
  from scipy.spatial.distance import cdist  # pylint: disable=g-import-not-at-top

  d = cdist(a, b)
  return max(d.min(axis=1).mean(), d.min(axis=0).mean())


def mhd_predictions(runs: list[Run]) -> list[np.ndarray]:
  """The official demo's baseline: argmin over training images of the MHD cost."""
  preds = []
  for r in runs:
    test_pts = [ink_points(x) for x in r.test]
    train_pts = [ink_points(x) for x in r.train]
    cost = np.array([[modified_hausdorff(t, c) for c in train_pts] for t in test_pts])
    preds.append(np.argmin(cost, axis=1))
  return preds
