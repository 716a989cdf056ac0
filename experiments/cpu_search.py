"""A search over the `:cpu` preset's main knobs, as a user with a GPU cluster would start it.

Model-based (Optuna TPE through Ray Tune), 3 seeds per configuration, ASHA stopping weak
trials on validation accuracy. On a cluster:

  python -m siamese_jax.sweep --sweep=experiments/cpu_search.py --workdir=/shared/runs/cpu_search \\
      --address=auto --gpus_per_trial=0.25
"""

CONFIG = "configs/koch.py:cpu"
SEARCH = "optuna"
NUM_SAMPLES = 32
SEEDS = 3
SCHEDULER = "asha"
RESOURCES = {"cpu": 2, "gpu": 0}
SPACE = {
  "train.learning_rate": ("loguniform", 3e-4, 3e-3),
  "train.chars_per_batch": ("choice", [16, 32, 64]),
  "train.chars_per_alphabet": ("choice", [0, 4, 8, 16]),
  "model.embed_dim": ("choice", [256, 512, 1024]),
  "model.image_size": ("choice", [28, 35, 42]),
  "augment.translate": ("uniform", 0.0, 2.0),
}
