"""Learning rate x batch composition grid for the `:cpu` preset (tune on validation, never on Lake).

python -m siamese_jax.sweep --sweep=experiments/lr.py --workdir=runs/lr
"""

from siamese_jax.sweep import grid

SEEDS = 3
SCHEDULER = "asha"  # stops weak learning rates early on validation
CONFIG = "configs/koch.py:cpu"


def get_sweep():
  return grid(
    {
      "train.learning_rate": [3e-4, 1e-3, 3e-3],
      "train.chars_per_batch": [16, 32, 64],
    }
  )
