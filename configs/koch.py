"""Koch et al. (2015) Siamese network on Omniglot.

Presets, chosen with `--config=configs/koch.py:NAME`:
  koch    (default) the paper: Koch network at 105x105, 30 background alphabets with
          drawers 1-12, 10 validation alphabets with 4 drawers, layer-wise SGD with
          momentum, affine distortions, a fixed set of 150k pairs x 9, early stopping.
          Meant for an accelerator.
  matlab  the seed MATLAB example: Adam 6e-5, batch 180, 10,000 iterations,
          narrow-normal init, all background alphabets and drawers, no distortion.
  cpu     the best one-hour result on a 2-core CPU (see the README for its figures).
  smoke   a tiny network at 32x32 that runs the whole path in well under a minute.
"""

import ml_collections
from ml_collections import config_dict

SWEEP_WAYS = (2, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
VALIDATION_ALPHABETS = (
    "Angelic", "Atemayar_Qelisayer", "Aurek-Besh", "Avesta", "Keble",
    "Mongolian", "Oriya", "Sylheti", "Syriac_(Serto)", "ULOG",
)
# The evaluation alphabets of Lake's 20 official runs.
TEST_ALPHABETS = (
    "Atlantean", "Ge_ez", "Glagolitic", "Gurmukhi", "Kannada", "Malayalam",
    "Manipuri", "Old_Church_Slavonic_(Cyrillic)", "Tengwar", "Tibetan",
)


def base_config() -> ml_collections.ConfigDict:
  """The paper's recipe (Koch et al., 2015, sections 3-5)."""
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.data_dir = config_dict.placeholder(str)  # tfds data dir; default ~/tensorflow_datasets.
  c.data.manual_dir = config_dict.placeholder(str)  # folder with the zips; default $OMNIGLOT_DIR.
  c.data.train_split = "background"
  c.data.train_alphabets = config_dict.placeholder(tuple)  # None: every alphabet of the split.
  c.data.train_drawers = tuple(range(1, 13))

  c.model = ml_collections.ConfigDict()
  c.model.image_size = 105
  c.model.features = (64, 128, 128, 256)
  c.model.kernel_sizes = (10, 7, 4, 4)
  c.model.embed_dim = 4096
  c.model.init = "koch"  # or "narrow_normal" (the seed MATLAB example).
  c.model.dtype = "float32"

  c.augment = ml_collections.ConfigDict()
  c.augment.enabled = True
  c.augment.theta = 10.0  # degrees
  c.augment.shear = 0.3
  c.augment.scale_min = 0.8
  c.augment.scale_max = 1.2
  c.augment.translate = 2.0  # pixels at the model's input size
  c.augment.prob = 0.5  # each component applied with this probability

  c.train = ml_collections.ConfigDict()
  c.train.pair_mode = "independent"  # or "all_pairs": every pair within a batch of images.
  c.train.batch_size = 128  # pairs per step (independent mode).
  c.train.chars_per_batch = 32  # all_pairs mode: characters x drawers images per step.
  c.train.drawers_per_char = 4
  c.train.fixed_pairs = 150_000  # 0: fresh pairs every step; K: a fixed set of K pairs...
  c.train.distortions_per_pair = 8  # ...each seen as itself or one of 8 fixed distortions.
  c.train.steps_per_epoch = 0  # 0: fixed_pairs * (1 + distortions_per_pair) / batch_size.
  c.train.max_epochs = 200
  c.train.patience = 20  # epochs without validation improvement; 0: never stop early.
  c.train.optimizer = "koch_sgd"
  c.train.learning_rate = 0.01  # a scalar, or one value per layer (conv..., embed, head).
  c.train.momentum = 0.9  # final momentum, scalar or per layer.
  c.train.momentum_start = 0.5
  c.train.momentum_epochs = 20  # epochs for momentum to rise to its final value.
  c.train.lr_decay = 0.99  # per epoch.
  c.train.l2 = 2e-4  # L2 weight penalty, scalar or per layer.
  c.train.b1 = 0.9  # Adam only.
  c.train.b2 = 0.99
  c.train.log_every = 100
  c.train.checkpoint_every = 1000
  c.train.keep_checkpoints = 3

  c.validation = ml_collections.ConfigDict()
  c.validation.enabled = True
  c.validation.split = "evaluation"
  c.validation.alphabets = VALIDATION_ALPHABETS
  c.validation.drawers = (13, 14, 15, 16)
  c.validation.n_way = 20
  c.validation.num_tasks = 320
  c.validation.verification_pairs = 1000
  c.validation.seed = 1

  c.eval = ml_collections.ConfigDict()
  c.eval.split = "evaluation"
  c.eval.alphabets = TEST_ALPHABETS  # None: every alphabet of the split.
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


def matlab(c):
  """The seed MATLAB example."""
  c.data.train_drawers = tuple(range(1, 21))
  c.model.init = "narrow_normal"
  c.augment.enabled = False
  c.train.optimizer = "adam"
  c.train.learning_rate = 6e-5
  c.train.batch_size = 180
  c.train.fixed_pairs = 0
  c.train.steps_per_epoch = 1000
  c.train.max_epochs = 10  # 10,000 iterations.
  c.train.patience = 0
  c.eval.alphabets = None  # the example reports verification on all 20 evaluation alphabets.
  return c


def cpu(c):
  """Best validation accuracy for one hour (training + evaluation) on a 2-core CPU."""
  c.model.image_size = 48
  c.model.features = (32, 64, 64, 128)
  c.model.kernel_sizes = (5, 5, 3, 3)
  c.model.embed_dim = 512
  c.augment.translate = 1.0
  c.train.pair_mode = "all_pairs"
  c.train.chars_per_batch = 32
  c.train.drawers_per_char = 4
  c.train.fixed_pairs = 0
  c.train.optimizer = "adam"
  c.train.learning_rate = 1e-3
  c.train.b2 = 0.999
  c.train.steps_per_epoch = 500
  c.train.max_epochs = 12
  c.train.patience = 0
  c.eval.num_tasks = 400
  c.eval.verification_pairs = 10_000
  return c


def smoke(c):
  """Everything at toy size: a minute on a laptop CPU."""
  c.model.image_size = 32
  c.model.features = (8, 16, 16, 32)
  c.model.kernel_sizes = (5, 3, 3, 2)
  c.model.embed_dim = 64
  c.model.init = "narrow_normal"
  c.augment.translate = 1.0
  c.train.optimizer = "adam"
  c.train.learning_rate = 3e-3
  c.train.batch_size = 32
  c.train.fixed_pairs = 0
  c.train.steps_per_epoch = 20
  c.train.max_epochs = 2
  c.train.patience = 0
  c.train.log_every = 10
  c.train.checkpoint_every = 20
  c.validation.alphabets = None  # every evaluation alphabet, drawers 13-16.
  c.validation.n_way = 2
  c.validation.num_tasks = 40
  c.validation.verification_pairs = 200
  c.eval.alphabets = None
  c.eval.ways = (2, 5, 20)
  c.eval.num_tasks = 100
  c.eval.verification_pairs = 1000
  c.eval.mhd_baseline = False
  return c


PRESETS = {"koch": lambda c: c, "matlab": matlab, "cpu": cpu, "smoke": smoke}


def get_config(preset: str = "koch") -> ml_collections.ConfigDict:
  preset = preset or "koch"
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
  c = PRESETS[preset](base_config())
  c.preset = preset
  return c
