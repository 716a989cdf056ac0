"""A folder of your own images: `--config=configs/folder.py --config.data.dir=DIR`.

DIR/<class>/<image> or DIR/<group>/<class>/<image> (a group plays an alphabet's part). The classes
are split 70 / 15 / 15 into train / validation / test (data.class_split, or data.split_file for
explicit lists); the split, the classes left out and the files skipped are written into the workdir
(data.json). The network is the :cpu preset's (28x28, the shipped model's shapes), so
`--config.train.init_from=pretrained` fine-tunes the shipped model.

Presets:
  folder  (default) small data on a CPU: 16 classes x 2 images a batch, 2,000 steps, validation on
          5-way tasks, the one-shot sweep up to 20-way (lower eval.ways for fewer test classes).
  smoke   a tiny network and a few steps: the whole path in well under a minute.
"""

import importlib.util
import os

import ml_collections

from siamese_jax.defaults import preset_config


def _sibling(name: str):
  """configs/NAME.py beside this file, loaded by path: the config loads from any working directory."""
  spec = importlib.util.spec_from_file_location(
    f"configs_{name}", os.path.join(os.path.dirname(__file__), f"{name}.py")
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


koch = _sibling("koch")


def folder(c):
  """Defaults for a few hundred classes with a few images each."""
  c = koch.cpu(c)
  c.data.source = "folder"
  c.data.extra_train_alphabets = ()
  c.augment.class_rotations = False  # a rotated image of your class may be another class (6 and 9)
  c.train.chars_per_batch = 16
  c.train.drawers_per_char = 2  # a class needs only two images
  c.train.chars_per_alphabet = 0
  c.train.steps_per_epoch = 100
  c.train.max_epochs = 20
  c.train.log_every = 50
  c.train.checkpoint_every = 500
  c.validation.split = "validation"
  c.validation.alphabets = None
  c.validation.n_way = 5
  c.validation.num_tasks = 500
  c.validation.verification_pairs = 500
  c.eval.split = "test"
  c.eval.alphabets = None
  c.eval.ways = (2, 5, 10, 20)
  c.eval.num_tasks = 400
  c.eval.verification_pairs = 2000
  c.eval.fresh_lake_runs = 0
  c.eval.mhd_baseline = False
  c.eval.tta_copies = 1  # the :cpu preset's test-time augmentation was chosen for handwriting
  return c


def smoke(c):
  """Everything at toy size."""
  c = folder(c)
  c.model.features = (8, 16)
  c.model.kernel_sizes = (3, 3)
  c.model.embed_dim = 32
  c.model.norm_groups = 4
  c.train.chars_per_batch = 4
  c.train.steps_per_epoch = 10
  c.train.max_epochs = 2
  c.train.log_every = 5
  c.train.checkpoint_every = 10
  c.validation.n_way = 2
  c.validation.num_tasks = 40
  c.validation.verification_pairs = 100
  c.eval.ways = (2,)
  c.eval.num_tasks = 50
  c.eval.verification_pairs = 200
  c.eval.baselines = ()
  return c


PRESETS = {"folder": folder, "smoke": smoke}


def get_config(preset: str = "folder") -> ml_collections.ConfigDict:
  return preset_config(PRESETS, preset or "folder")
