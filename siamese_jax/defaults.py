"""Default configuration: Koch et al.'s paper recipe. Config files start from it.

Every key a config may have is here: `config_check.check` rejects any other key.
"""

import ml_collections
from ml_collections import config_dict

SWEEP_WAYS = (2, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
VALIDATION_ALPHABETS = (
  "Angelic",
  "Atemayar_Qelisayer",
  "Aurek-Besh",
  "Avesta",
  "Keble",
  "Mongolian",
  "Oriya",
  "Sylheti",
  "Syriac_(Serto)",
  "ULOG",
)
# The evaluation alphabets of Lake's 20 official runs.
TEST_ALPHABETS = (
  "Atlantean",
  "Ge_ez",
  "Glagolitic",
  "Gurmukhi",
  "Kannada",
  "Malayalam",
  "Manipuri",
  "Old_Church_Slavonic_(Cyrillic)",
  "Tengwar",
  "Tibetan",
)


def default_config() -> ml_collections.ConfigDict:
  """The paper's recipe (Koch et al., 2015, sections 3-5)."""
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.source = "omniglot"  # a name in input_pipeline.SOURCES: "omniglot", or "folder" (data.dir)
  c.data.data_dir = config_dict.placeholder(str)  # tfds data dir; default ~/tensorflow_datasets.
  c.data.manual_dir = config_dict.placeholder(str)  # folder with the zips; default $OMNIGLOT_DIR.
  c.data.train_split = "background"
  c.data.train_alphabets = config_dict.placeholder(tuple)  # None: every alphabet of the split.
  c.data.train_drawers = tuple(range(1, 13))
  # Alphabets of the evaluation split trained on as well (same drawers); the config check refuses
  # validation, test and Lake's alphabets here.
  c.data.extra_train_alphabets = ()
  # "": Omniglot's characters are chosen by alphabet and drawer (above). "vinyals": by the character
  # lists of Vinyals et al.'s split (`omniglot.splits`); validation.split and eval.split then name a part
  # ("validation", "test") and train_alphabets / extra_train_alphabets stay unset.
  c.data.character_split = ""
  # source "folder": DIR/<class>/<image> or DIR/<group>/<class>/<image>. Its classes (or groups, with
  # split_by "group") are split into train / validation / test by class_split fractions (seeded by
  # split_seed) or by the lists of split_file (JSON); validation.split and eval.split then name a part.
  c.data.dir = config_dict.placeholder(str)
  c.data.class_split = (0.7, 0.15, 0.15)
  c.data.split_by = "class"
  c.data.split_file = config_dict.placeholder(str)
  c.data.split_seed = 0
  c.data.images_per_class = 0  # 0: the fewest any class of a part has (smaller classes are left out)
  c.data.strict = False  # True: refuse a folder with unreadable files instead of skipping them

  c.model = ml_collections.ConfigDict()
  c.model.image_size = 105
  c.model.channels = 1  # 1: grey (Omniglot, and a folder by default); 3: RGB (a folder of colour images)
  c.model.features = (64, 128, 128, 256)
  c.model.kernel_sizes = (10, 7, 4, 4)
  c.model.embed_dim = 4096
  c.model.norm_groups = 0  # > 0: a group norm with this many groups after every conv (no running statistics).
  c.model.init = "koch"  # a name in model.INITS; "narrow_normal" is the seed MATLAB example's.
  c.model.dtype = "float32"  # compute dtype ("bfloat16": parameters and optimiser state stay float32)
  c.model.conv_impl = "auto"  # a name in convs.CONV_IMPLS; auto: cpu on CPU, xla on accelerators
  # How two embeddings become a logit (model.HEADS): "l1" Koch's weighted L1 distance; "euclidean"
  # -s * squared distance + b; "cosine" s * cosine + b (s, b learned; the metric objectives need no b).
  c.model.head = "l1"

  c.augment = ml_collections.ConfigDict()
  c.augment.enabled = True
  c.augment.theta = 10.0  # degrees
  c.augment.shear = 0.3
  c.augment.scale_min = 0.8
  c.augment.scale_max = 1.2
  c.augment.translate = 2.0  # pixels at the model's input size
  c.augment.prob = 0.5  # each component applied with this probability
  c.augment.class_rotations = False  # add 90/180/270-degree rotations as new training characters

  c.train = ml_collections.ConfigDict()
  c.train.pair_mode = "independent"  # or "all_pairs": every pair within a batch of images.
  # "": the pair mode's clamped BCE (losses.OBJECTIVES "pairs" / "all_pairs"); on all_pairs batches also
  # "contrastive" (Hadsell et al., 2006), "triplet" (every valid triplet) or "prototypical" (Snell et al.,
  # 2017: half of each class's images make its prototype, the rest are classified), with model.head
  # "euclidean" to score as they train.
  c.train.objective = ""
  c.train.margin = 1.0  # contrastive and triplet: on the distance, resp. the squared distance
  c.train.batch_size = 128  # pairs per step (independent mode).
  c.train.chars_per_batch = 32  # all_pairs mode: characters x drawers images per step.
  c.train.drawers_per_char = 4
  c.train.hard_negatives = 0.0  # all_pairs mode: beta > 0 weighs different pairs by softmax(beta * logit)
  c.train.chars_per_alphabet = 0  # all_pairs mode: 0 draws characters uniformly; k > 0, k at a time from one alphabet.
  c.train.fixed_pairs = 150_000  # 0: fresh pairs every step; K: a fixed set of K pairs...
  c.train.distortions_per_pair = 8  # ...each seen as itself or one of 8 fixed distortions.
  c.train.steps_per_epoch = 0  # 0: fixed_pairs * (1 + distortions_per_pair) / batch_size.
  c.train.max_epochs = 200
  c.train.patience = 20  # epochs without validation improvement; 0: never stop early.
  c.train.optimizer = "koch_sgd"
  # Koch et al. tune a rate per layer in [1e-4, 1e-1] (values unpublished). Here each layer's rate is
  # learning_rate x its lr_scales entry (conv..., embed, head), chosen so that every layer's update is
  # about 1e-3 of its weights at the paper's init (siamese_jax.tools.koch_rates; docs/results.md): a
  # uniform 0.01 moves conv0 by 1% a step and the dense layers by 3e-6 and 5e-5, and diverged
  # once the momentum passed 0.85. Empty: 1 for every layer. koch_sgd only.
  c.train.learning_rate = 0.01
  c.train.lr_scales = (0.1, 0.5, 0.3, 0.2, 10.0, 10.0)
  c.train.momentum = 0.9  # final momentum, scalar or per layer.
  c.train.momentum_start = 0.5
  c.train.momentum_epochs = 20  # epochs for momentum to rise to its final value.
  c.train.lr_decay = 0.99  # per epoch.
  c.train.l2 = 2e-4  # L2 weight penalty, scalar or per layer.
  c.train.lr_schedule = "constant"  # Adam only: "constant" or "cosine" (to 0 over all epochs).
  c.train.b1 = 0.9  # Adam only.
  c.train.b2 = 0.99
  c.train.weight_decay = 0.0  # Adam only: decoupled weight decay (AdamW) on the weights, not biases or gains.
  # Start from trained parameters instead of a random init: "pretrained" (the shipped model) or a
  # workdir; the network must have the same shapes. "": random init. Read at step 0 only.
  c.train.init_from = ""
  c.train.log_every = 100
  # Said on a CPU when the rest of the run takes over two hours (a preset that is the advice sets "").
  c.train.cpu_hint = "--config=configs/koch.py:cpu trains a strong model in about an hour"
  c.train.checkpoint_every = 1000
  c.train.keep_checkpoints = 3

  c.validation = ml_collections.ConfigDict()
  c.validation.enabled = True
  # How the best epoch is chosen (selection.PROTOCOLS): "within_alphabet" (num_tasks n_way-way tasks
  # within an alphabet) or "lake_runs" (lake_runs fresh runs in the format of Lake's 20 runs).
  # In :cpu the two pick epochs that tie over 3 seeds (docs/results.md, "Choosing the best epoch").
  c.validation.protocol = "within_alphabet"
  c.validation.split = "evaluation"
  c.validation.alphabets = VALIDATION_ALPHABETS
  c.validation.drawers = (13, 14, 15, 16)
  c.validation.n_way = 20
  c.validation.num_tasks = 2000  # 20-way: a 95% interval of about +-2 points (320 gave +-5)
  c.validation.lake_runs = 2000  # protocol lake_runs: 40,000 queries
  c.validation.tta = False  # True: validate with the eval's test-time augmentation (eval.tta_*; slower)
  c.validation.verification_pairs = 1000
  c.validation.seed = 1

  c.eval = ml_collections.ConfigDict()
  c.eval.split = "evaluation"
  c.eval.alphabets = TEST_ALPHABETS  # None: every alphabet of the split.
  c.eval.drawers = config_dict.placeholder(tuple)  # None: all 20.
  c.eval.ways = SWEEP_WAYS
  c.eval.protocols = ("within_alphabet", "across_alphabet")
  c.eval.shots = (1,)  # k-shot sweeps: every k of the tuple (5-shot tasks need 6 drawers)
  c.eval.num_tasks = 400  # per N and protocol.
  c.eval.seed = 0
  c.eval.train_alphabet_tasks = True  # also sweep the training alphabets (over-fitting).
  c.eval.baselines = ("pixel_1nn",)
  c.eval.verification_pairs = 10_000
  c.eval.matlab_verification = (5, 150)  # batches x pairs.
  c.eval.lake_runs = config_dict.placeholder(str)  # all_runs.zip; default: manual dir, OMNIGLOT_DIR.
  c.eval.fresh_lake_runs = 400  # fresh runs in Lake's format from the test alphabets (0: none)
  c.eval.mhd_baseline = True  # the official demo's baseline on Lake's runs (about 20 s).
  # The few-shot literature's protocol (`evaluate.episode_accuracy`; 0: off): this many N-way K-shot
  # episodes per (N, K) cell drawn across all evaluation classes (with their 90/180/270-degree
  # rotations as more classes if episode_rotations), Q queries per class. Q = 5: K + Q distinct
  # drawers per class must fit the 20 drawers for 5-shot cells, and N x 5 queries an episode.
  c.eval.episodes = 0
  c.eval.episode_ways = (5, 20)
  c.eval.episode_shots = (1, 5)
  c.eval.episode_queries = 5
  c.eval.episode_rotations = False
  c.eval.batch_size = 256  # images per encoder call.
  # Test-time augmentation of the model's scores (`oneshot.tta_scorer`): each image as itself and
  # tta_copies - 1 fixed distortions, the training ranges scaled by tta_strength; 1: off.
  c.eval.tta_copies = 1
  c.eval.tta_strength = 1.0
  c.eval.tta_seed = 0
  return c


def preset_config(presets: dict, preset: str) -> ml_collections.ConfigDict:
  """The defaults with the named preset of a config file applied (`presets`: name -> function of a
  config), and `preset` recorded; ValueError naming the choices for an unknown name."""
  if preset not in presets:
    raise ValueError(f"unknown preset {preset!r}; choose from {sorted(presets)}")
  c = presets[preset](default_config())
  c.preset = preset
  return c
