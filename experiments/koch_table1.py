"""Koch et al. (2015) Table 1: training-set size {30k, 90k, 150k} pairs x affine distortions {off, x8}.

python -m siamese_jax.sweep --sweep=experiments/koch_table1.py --workdir=runs/table1
"""

from siamese_jax.sweep import grid

CONFIG = "configs/koch.py"


def get_sweep():
  return grid(
    {
      "train.fixed_pairs": [30_000, 90_000, 150_000],
      "augment.enabled": [False, True],
    }
  )
