"""Koch et al. (2015) Siamese network on Omniglot.

Presets, chosen with `--config=configs/koch.py:NAME`:
  koch   (default) the Koch network at 105x105 with the seed MATLAB example's
         optimiser (Adam 6e-5, batch 180); meant for an accelerator.
  smoke  a tiny network at 32x32 that runs the whole path in well under a minute
         on a laptop CPU.
"""

import ml_collections
from ml_collections import config_dict

SWEEP_WAYS = (2, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50)


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.data_dir = config_dict.placeholder(str)  # tfds data dir; default ~/tensorflow_datasets.
  c.data.manual_dir = config_dict.placeholder(str)  # folder with the zips; default $OMNIGLOT_DIR.
  c.data.train_split = "background"
  c.data.train_alphabets = config_dict.placeholder(tuple)  # None: every alphabet of the split.
  c.data.train_drawers = tuple(range(1, 21))

  c.model = ml_collections.ConfigDict()
  c.model.image_size = 105
  c.model.features = (64, 128, 128, 256)
  c.model.kernel_sizes = (10, 7, 4, 4)
  c.model.embed_dim = 4096
  c.model.init = "koch"  # or "narrow_normal" (the seed MATLAB example).
  c.model.dtype = "float32"

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 180  # pairs per step.
  c.train.num_steps = 10_000
  c.train.optimizer = "adam"
  c.train.learning_rate = 6e-5
  c.train.b1 = 0.9
  c.train.b2 = 0.99
  c.train.log_every = 100
  c.train.checkpoint_every = 1000
  c.train.keep_checkpoints = 3

  c.eval = ml_collections.ConfigDict()
  c.eval.split = "evaluation"
  c.eval.alphabets = config_dict.placeholder(tuple)  # None: every alphabet of the split.
  c.eval.drawers = config_dict.placeholder(tuple)  # None: all 20.
  c.eval.ways = SWEEP_WAYS
  c.eval.protocols = ("within_alphabet", "across_alphabet")
  c.eval.shots = 1
  c.eval.num_tasks = 400  # per N and protocol.
  c.eval.seed = 0
  c.eval.train_alphabet_tasks = True  # also sweep the training alphabets (over-fitting).
  c.eval.baselines = ("pixel_1nn",)
  c.eval.verification_pairs = 10_000
  c.eval.matlab_verification = (5, 150)  # batches x pairs.
  c.eval.lake_runs = config_dict.placeholder(str)  # all_runs.zip; default: manual dir, OMNIGLOT_DIR.
  c.eval.mhd_baseline = True  # the official demo's baseline on Lake's runs (about 20 s).
  c.eval.batch_size = 256  # images per encoder call.
  return c


def smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  c.model.image_size = 32
  c.model.features = (8, 16, 16, 32)
  c.model.kernel_sizes = (5, 3, 3, 2)
  c.model.embed_dim = 64
  c.model.init = "narrow_normal"
  c.train.batch_size = 32
  c.train.num_steps = 40
  c.train.learning_rate = 3e-3
  c.train.log_every = 10
  c.train.checkpoint_every = 20
  c.eval.ways = (2, 5, 20)
  c.eval.num_tasks = 100
  c.eval.verification_pairs = 1000
  c.eval.mhd_baseline = False
  return c


PRESETS = {"koch": lambda c: c, "smoke": smoke}


def get_config(preset: str = "koch") -> ml_collections.ConfigDict:
  preset = preset or "koch"
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
  c = PRESETS[preset](base_config())
  c.preset = preset
  return c
