"""Shared fixtures: a tiny generated Omniglot, and the real one when ../shared/omniglot exists."""

import io
import os
import subprocess
import sys
import zipfile

import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from siamese_jax import evaluate, oneshot
from siamese_jax.defaults import TEST_ALPHABETS, VALIDATION_ALPHABETS
from siamese_jax.omniglot.loader import CharacterArray

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_OMNIGLOT = os.path.join(os.path.dirname(ROOT), "shared", "omniglot")

# The evaluation split holds every validation and test alphabet (3 characters in the first two
# of each, 2 in the others), so the presets run on it with their own alphabets.
_TINY_EVALUATION = {
  a: 3 if i < 2 else 2 for names in (VALIDATION_ALPHABETS, TEST_ALPHABETS) for i, a in enumerate(names)
}
# split -> (zip root folder, {alphabet: number of characters}); 20 drawers each.
TINY_LAYOUT = {
  "background": ("images_background", {"Latin": 4, "Greek": 3}),
  "evaluation": ("images_evaluation", _TINY_EVALUATION),
  "small1": ("images_background_small1", {"Latin": 2}),
  "small2": ("images_background_small2", {"Greek": 2}),
}
TINY_DRAWERS = 20


def character_image(label: int, drawer: int, size: int = 105) -> np.ndarray:
  """A bool image (True = paper): a glyph fixed by `label`, jittered by `drawer`."""
  rng = np.random.default_rng(label)
  img = np.ones((size, size), bool)
  shift = (drawer % 3) - 1
  for _ in range(3):
    r0, c0 = rng.integers(10, size - 40, 2) + shift
    h, w = rng.integers(4, 30, 2)
    img[r0 : r0 + h, c0 : c0 + w] = False
  return img


def png_bytes(img: np.ndarray) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(img).convert("1").save(buf, format="PNG")
  return buf.getvalue()


def write_tiny_omniglot(directory: str, bad_image=None) -> dict:
  """Writes the four zips of a tiny Omniglot into directory; returns counts per split.

  Global character numbers follow the real release: background characters first,
  and small1/small2 reuse the numbers of the background alphabets they copy.
  """
  os.makedirs(directory, exist_ok=True)
  numbers, next_number = {}, 1
  for split in ("background", "evaluation"):
    for alphabet, n in TINY_LAYOUT[split][1].items():
      for c in range(1, n + 1):
        numbers[(alphabet, c)] = next_number
        next_number += 1
  counts = {}
  for split, (root, alphabets) in TINY_LAYOUT.items():
    with zipfile.ZipFile(os.path.join(directory, root + ".zip"), "w") as zf:
      for alphabet, n in alphabets.items():
        for c in range(1, n + 1):
          number = numbers[(alphabet, c)]
          for d in range(1, TINY_DRAWERS + 1):
            img = character_image(number, d)
            if bad_image == (split, alphabet, c, d):
              img = img[:50]
            zf.writestr(f"{root}/{alphabet}/character{c:02d}/{number:04d}_{d:02d}.png", png_bytes(img))
    counts[split] = dict(
      alphabets=len(alphabets),
      characters=sum(alphabets.values()),
      images=sum(alphabets.values()) * TINY_DRAWERS,
    )
  return counts


def write_fake_runs(directory: str, num_runs: int = 2, seed: int = 0) -> dict:
  """Writes an all_runs.zip in the official layout; returns {run: answers (class index per item)}.

  Training image classKK shows glyph 1000 + KK (drawer 1); test item MM shows the
  glyph of its class (drawer 2). Lines of class_labels.txt are in item order.
  """
  rng = np.random.default_rng(seed)
  answers = {}
  with zipfile.ZipFile(os.path.join(directory, "all_runs.zip"), "w") as zf:
    for r in range(1, num_runs + 1):
      run = f"run{r:02d}"
      classes = rng.permutation(20) + 1
      lines = []
      for k in range(1, 21):
        zf.writestr(f"{run}/training/class{k:02d}.png", png_bytes(character_image(1000 + k, 1)))
      for m, k in enumerate(classes, start=1):
        zf.writestr(f"{run}/test/item{m:02d}.png", png_bytes(character_image(1000 + k, 2)))
        lines.append(f"{run}/test/item{m:02d}.png {run}/training/class{k:02d}.png")
      zf.writestr(f"{run}/class_labels.txt", "\n".join(lines) + "\n")
      answers[run] = classes - 1
  return answers


@pytest.fixture(scope="session")
def tiny_omniglot(tmp_path_factory):
  """(manual_dir, prepared tfds data_dir, counts) of the tiny generated Omniglot."""
  from siamese_jax.omniglot import loader

  base = tmp_path_factory.mktemp("tiny_omniglot")
  manual = str(base / "zips")
  counts = write_tiny_omniglot(manual)
  write_fake_runs(manual)
  data_dir = str(base / "tfds")
  loader.prepare(data_dir, manual)
  return manual, data_dir, counts


@pytest.fixture(scope="session")
def real_omniglot():
  """(manual_dir, tfds data_dir) of the real Omniglot; skips when ../shared/omniglot is missing.

  The prepared data set is cached in .cache/tfds under the project root.
  """
  if not os.path.exists(os.path.join(SHARED_OMNIGLOT, "images_background.zip")):
    pytest.skip(f"real Omniglot not found at {SHARED_OMNIGLOT}")
  from siamese_jax.omniglot import loader

  data_dir = os.path.join(ROOT, ".cache", "tfds")
  loader.prepare(data_dir, SHARED_OMNIGLOT)
  return SHARED_OMNIGLOT, data_dir


@pytest.fixture(autouse=True)
def _no_env_manual_dir(monkeypatch):
  monkeypatch.delenv("OMNIGLOT_DIR", raising=False)


def run_main(manual_dir: str, tmp_path, *args, timeout: int = 600) -> subprocess.CompletedProcess:
  """Runs `python -m siamese_jax.main --config=configs/koch.py:smoke ARGS` on a tiny Omniglot; asserts success."""
  env = dict(os.environ, OMNIGLOT_DIR=manual_dir, TFDS_DATA_DIR=str(tmp_path / "tfds"))
  proc = subprocess.run(
    [sys.executable, "-m", "siamese_jax.main", "--config=configs/koch.py:smoke", *args],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=timeout,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def smoke_config(tiny_omniglot, **train_overrides):
  """The smoke preset on the tiny Omniglot: no validation, 2 epochs of 15 steps, checkpoints every 5."""
  _, data_dir, _ = tiny_omniglot
  from configs import koch

  cfg = koch.get_config("smoke")
  cfg.data.data_dir = data_dir
  cfg.validation.enabled = False
  cfg.train.steps_per_epoch = 15
  cfg.train.max_epochs = 2
  cfg.train.checkpoint_every = 5
  for k, v in train_overrides.items():
    cfg.train[k] = v
  return cfg


def main_cmd(workdir, *extra):
  """The command line of a short smoke training run (checkpoint and log every step)."""
  return [
    sys.executable,
    "-m",
    "siamese_jax.main",
    "--config=configs/koch.py:smoke",
    f"--workdir={workdir}",
    "--mode=train",
    "--config.validation.enabled=False",
    "--config.train.steps_per_epoch=15",
    "--config.train.max_epochs=2",
    "--config.train.checkpoint_every=1",
    "--config.train.log_every=1",
    *extra,
  ]


def coded_characters(alphabet_sizes=(5, 8, 12), drawers=6) -> CharacterArray:
  """Images whose pixel (0, 0) holds the character number and pixel (0, 1) the drawer."""
  alphabets = np.concatenate([np.full(n, a) for a, n in enumerate(alphabet_sizes)])
  c = len(alphabets)
  images = np.zeros((c, drawers, 4, 4, 1), np.float32)
  images[:, :, 0, 0, 0] = np.arange(c)[:, None]
  images[:, :, 0, 1, 0] = np.arange(drawers)[None, :]
  return CharacterArray(images=images, labels=np.arange(c), alphabets=alphabets, drawers=np.arange(1, drawers + 1))


def feature_scorer(pixel: int, name: str) -> oneshot.Scorer:
  """Embeds one coded pixel; score = -|difference|."""
  return oneshot.Scorer(name=name, embed=lambda _, x: x[:, 0, pixel, :], pair=lambda _, a, b: -jnp.abs(a - b).sum(-1))


def run_sweep(scorer, chars, ways=(2, 5, 8), protocols=oneshot.PROTOCOLS, num_tasks=600, seed=0, shots=1):
  rows, passes = evaluate.nway_accuracy(scorer, chars, "evaluation", ways, protocols, shots, num_tasks, seed, 64)
  return {(r["protocol"], r["n_way"]): r for r in rows}, passes


@pytest.fixture(scope="session")
def smoke_workdir(tiny_omniglot, tmp_path_factory):
  """A smoke run trained for 3 epochs and evaluated (shared: tests copy it before changing it)."""
  from configs import koch  # pylint: disable=g-import-not-at-top
  from siamese_jax import train  # pylint: disable=g-import-not-at-top

  manual, data_dir, _ = tiny_omniglot
  cfg = koch.get_config("smoke")
  cfg.data.data_dir, cfg.data.manual_dir = data_dir, manual  # Lake's runs: the fixture's all_runs.zip
  cfg.train.max_epochs = 3
  cfg.eval.num_tasks = 20
  workdir = str(tmp_path_factory.mktemp("smoke"))
  train.train_and_evaluate(cfg, workdir)
  return workdir
